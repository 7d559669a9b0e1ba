"""Pure incremental learners (river API), with no Kafka and no Faust.

Everything here can be used in a notebook without the service.
"""
