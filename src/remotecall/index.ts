// remoteCall: one function call as one job, switched by its own *_REMOTEINFO variable.
export { remoteCall, type RemoteCallDefaults, type RemoteCallWrapper } from './remote-call.js';
export { remoteCallOptions, type RemoteCallOptions } from './call-options.js';
