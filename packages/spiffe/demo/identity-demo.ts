console.log(
  'identity demo placeholder: SpiffeId',
  (await import('@mesh/spiffe')).SpiffeId.parse(
    'spiffe://cluster.local/ns/default/sa/demo',
  ).toString(),
);
