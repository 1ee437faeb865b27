import type { Authorization } from '@mesh/l4-rbac';
import {
  ADDRESS_TYPE_URL,
  type Address,
  AUTHORIZATION_TYPE_URL,
  type ResourceChange,
} from '@mesh/xds-client';

/** One line per resource: what an operator wants to see at a glance. */
export function describeAddress(value: Address): string {
  if (value.kind === 'workload') {
    const w = value.workload;
    const waypoint = w.waypoint ? ` waypoint=${gateway(w.waypoint.destination)}` : '';
    const services = Object.keys(w.services);
    return [
      `workload ${w.namespace}/${w.name}`,
      `ips=${w.addresses.join(',') || '-'}`,
      `identity=spiffe://${w.trustDomain}/ns/${w.namespace}/sa/${w.serviceAccount}`,
      `protocol=${w.tunnelProtocol}`,
      `status=${w.status}`,
      services.length > 0 ? `services=${services.join(',')}` : '',
      w.authorizationPolicies.length > 0 ? `policies=${w.authorizationPolicies.join(',')}` : '',
    ]
      .filter(Boolean)
      .join(' ')
      .concat(waypoint);
  }
  const s = value.service;
  const ports = s.ports.map((p) => `${p.servicePort}->${p.targetPort}`).join(',');
  return `service ${s.namespace}/${s.hostname} vips=${s.addresses.map((a) => a.address).join(',') || '-'} ports=${ports || '-'}`;
}

export function describePolicy(p: Authorization): string {
  const rules = p.rules.length === 1 ? '1 rule' : `${p.rules.length} rules`;
  return `policy ${p.namespace}/${p.name} ${p.action} scope=${p.scope}${p.dryRun ? ' dry-run' : ''} ${rules}`;
}

function gateway(d: { kind: 'address'; address: string } | { kind: 'hostname'; hostname: string }) {
  return d.kind === 'address' ? d.address : d.hostname;
}

function describe(typeUrl: string, value: unknown): string {
  if (typeUrl === ADDRESS_TYPE_URL) return describeAddress(value as Address);
  if (typeUrl === AUTHORIZATION_TYPE_URL) return describePolicy(value as Authorization);
  return `${typeUrl} ${JSON.stringify(value)}`;
}

/** `+` added, `~` updated (with what it was), `-` removed: one line each. */
export function formatChange(change: ResourceChange): string[] {
  const lines: string[] = [];
  for (const r of change.added) lines.push(`+ ${describe(change.typeUrl, r.value)}`);
  for (const r of change.updated) {
    lines.push(`~ ${describe(change.typeUrl, r.value)}`);
    lines.push(`    was ${describe(change.typeUrl, r.previous)}`);
  }
  for (const r of change.removed) lines.push(`- ${describe(change.typeUrl, r.previous)}`);
  return lines;
}
