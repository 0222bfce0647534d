"""The ``--monitoring_config_file``: a text-format ``tensorflow.serving.MonitoringConfig``.

tensorflow-serving-api ships no Python module for monitoring_config.proto, so the two messages
(``MonitoringConfig{PrometheusConfig prometheus_config = 1}``,
``PrometheusConfig{bool enable = 1; string path = 2}``) are declared here in a private pool.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def _message_class() -> type:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="cloudserve_monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    prometheus = file_proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=8, label=1)  # TYPE_BOOL, optional
    prometheus.field.add(name="path", number=2, type=9, label=1)  # TYPE_STRING
    monitoring = file_proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config", number=1, type=11, label=1,  # TYPE_MESSAGE
        type_name=".tensorflow.serving.PrometheusConfig",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    )


_MonitoringConfig = _message_class()


def prometheus_path(text: str) -> str | None:
    """Returns the Prometheus path the config enables, or None when it is disabled.

    Raises:
        ValueError: the text is not a valid MonitoringConfig.
    """
    config = _MonitoringConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise ValueError(
            f"Error parsing text-format tensorflow.serving.MonitoringConfig: {exc}"
        ) from None
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_PROMETHEUS_PATH
