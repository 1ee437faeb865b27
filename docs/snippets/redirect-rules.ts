import {
  inpodIptablesRules,
  inpodNftRules,
  isSupported,
  policyRouting,
  probeCapabilities,
} from '@mesh/redirect';

// What this process may do (never throws): each missing capability comes with a reason.
const caps = probeCapabilities();
console.log('addon loaded:', isSupported, 'SO_MARK allowed:', caps.mark);
for (const reason of caps.missing) console.log('missing:', reason);

// istio-cni's in-pod rule set, as iptables-restore input and as an nft script.
const rules = inpodIptablesRules({ dnsCapture: false, ipv6: false });
console.log(
  rules.ipv4
    .split('\n')
    .filter((l) => l.includes('REDIRECT'))
    .join('\n'),
);
console.log(inpodNftRules({ ipv6: false }).includes('redirect to :15001'));
console.log(policyRouting({ ipv6: false }).ipv4.rule.join(' '));
