"""streamsvc: online stream processing with incremental learners over Kafka."""

__version__ = "0.1.0"
