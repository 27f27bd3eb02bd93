"""Long-term memory: conversation summaries (``summarize``), stored and retrievable."""

from trio_companion.services.memory.summarize import (
    Summarizer,
    SummarizerStatistics,
    SummaryFailed,
    summary_document_path,
)

__all__ = ["Summarizer", "SummarizerStatistics", "SummaryFailed", "summary_document_path"]
