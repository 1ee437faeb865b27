import type { Authorization } from '@mesh/l4-rbac';
import { type CompiledPolicy, compilePolicy, decide } from '@mesh/l4-rbac';
import type { StateStore } from '../state/store.js';
import type { Authorize } from './authorize.js';

/**
 * Policy decisions with @mesh/l4-rbac over the store's applicable policies (namespace, global
 * and the workload's selector keys). Compiled policies are cached per policy object, so an
 * update recompiles only what changed.
 */
export function storeAuthorizer(store: StateStore): Authorize {
  const compiled = new WeakMap<Authorization, CompiledPolicy>();
  const compile = (p: Authorization) => {
    let c = compiled.get(p);
    if (!c) {
      c = compilePolicy(p);
      compiled.set(p, c);
    }
    return c;
  };
  return (req) => {
    const d = decide(store.policiesFor(req.workload).map(compile), {
      identity: req.identity?.toString() ?? null,
      sourceIp: req.sourceIp,
      destination: { namespace: req.workload.namespace, authorizationPolicies: [] },
      destinationIp: req.destinationIp,
      destinationPort: req.destinationPort,
    });
    return { allowed: d.allowed, reason: d.message };
  };
}
