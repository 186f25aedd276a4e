"""The conversational agent: a decision step (direct answer or agentic loop), tools, memory."""
