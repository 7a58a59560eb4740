#!/usr/bin/env node
'use strict';
// The `havoc` command (package.json "bin"); the CLI itself is dist/cli/ (src/cli/).
require('../dist/cli/main.js').main(process.argv);
