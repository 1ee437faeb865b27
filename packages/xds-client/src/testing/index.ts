export {
  FakeControlPlane,
  type FakeControlPlaneOptions,
  type RawResource,
  type RecordedRequest,
  type StreamInfo,
} from './fake-control-plane.js';
