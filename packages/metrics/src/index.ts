export {
  ACCESS_LOG_CHANNEL,
  type AccessLogFields,
  type AccessLogLevel,
  type AccessLogMessage,
  type AccessLogRecord,
} from './access-log.js';
export {
  type Baggage,
  type BaggageWorkload,
  type BaggageWorkloadType,
  encodeBaggage,
  parseBaggage,
  workloadBaggage,
} from './baggage.js';
export { METRICS_ERROR_CODES, MetricsError, type MetricsErrorCode } from './errors.js';
export {
  contentTypeOf,
  type ExpositionFormat,
  negotiateFormat,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
  renderRegistry,
} from './exposition.js';
export { forwardedHost, parseForwarded } from './forwarded.js';
export {
  createMetricsHandler,
  METRICS_PATHS,
  type MetricsHandlerOptions,
  type MetricsRequestHandler,
} from './handler.js';
export {
  BASE_TRAFFIC_LABEL_NAMES,
  type BaseTrafficLabelName,
  type ConnectionOpen,
  type DerivedWorkload,
  FAILURE_RESPONSE_FLAGS,
  guessInboundService,
  type InboundHboneConnectionInput,
  type InboundPlaintextConnectionInput,
  inboundHboneConnection,
  inboundPlaintextConnection,
  type LabelPort,
  type LabelService,
  type LabelWorkload,
  LOCALITY_LABEL_NAMES,
  type LocalityLabelName,
  type OutboundConnectionInput,
  type OutboundProtocol,
  outboundConnection,
  RESPONSE_FLAGS,
  type Reporter,
  type ResponseFlag,
  type SecurityPolicy,
  type ServiceDescription,
  TRAFFIC_LABEL_NAMES,
  type TrafficLabelName,
  type TrafficLabels,
  trafficLabels,
  workloadIdentity,
} from './labels.js';
export {
  BUILD_METRIC,
  type BuildInfoOptions,
  registerBuildInfo,
  XDS_METRICS,
  XdsMetrics,
  type XdsMetricsOptions,
  type XdsTerminationReason,
} from './meta.js';
export type { MetricDefinition } from './registry.js';
export {
  type ConnectionAddresses,
  type ConnectionClose,
  RecordedConnection,
  TRAFFIC_METRICS,
  TrafficMetrics,
  type TrafficMetricsEvents,
  type TrafficMetricsOptions,
} from './traffic.js';
export { createZtunnelMetrics, type ZtunnelMetrics } from './ztunnel.js';
