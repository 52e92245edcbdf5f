// jest's testResultsProcessor: keeps the run's JSON results (the same shape as `jest --json`)
// in artifacts/, where .ci/run counts passed and failed tests from them.
const fs = require('node:fs');
const path = require('node:path');

module.exports = (results) => {
  const out = path.join(__dirname, 'artifacts', 'jest-results.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results));
  return results;
};
