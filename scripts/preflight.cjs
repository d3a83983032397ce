// Runs before the TypeScript entry points, which an older Node cannot even load (they rely on its type stripping):
// one line saying what to install instead of a stack trace. ES5 and CommonJS, so that any Node parses it.
'use strict';

var required = require('../package.json').engines.node;
var wanted = /(\d+)\.(\d+)/.exec(required);
var found = process.versions.node.split('.');
var tooOld =
  Number(found[0]) < Number(wanted[1]) ||
  (Number(found[0]) === Number(wanted[1]) && Number(found[1]) < Number(wanted[2]));
var message =
  'kafka-lambda-bridge needs Node.js ' +
  required.replace('>=', '>= ') +
  ' (found ' +
  process.version +
  '); install Node 24 (nvm install 24, or see .nvmrc)\n';
if (tooOld) {
  process.stderr.write(message);
  process.exit(1);
}
