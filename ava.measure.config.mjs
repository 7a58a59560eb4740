// The measuring suites, alone, so that no other test process competes for the two cores.
import base, { measured } from './ava.config.mjs';

export default { ...base, files: measured, concurrency: 1 };
