"""Inference cost measurement: throughput, latency, memory and hardware efficiency."""
