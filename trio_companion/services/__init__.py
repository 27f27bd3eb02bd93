"""Companion services (LLM, chat, memory, RAG, TTS, RVC, STT, reminders, search).

They know the companion, not the wire; each backend sits behind a small Protocol.
"""
