"""The conversation: when to answer, what the model is told, how the reply reaches people."""
