import scenario from '/work/wt/l4-rbac/bench/src/scenarios/rbac-decisions.ts';
const res = await scenario.run({ quick: process.argv[2] === 'quick', profile: false, profileDir: '/tmp', tmpDir: '/tmp', signal: new AbortController().signal, log: (m) => console.error(m) });
console.log(JSON.stringify(res, null, 1));
