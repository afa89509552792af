// Prints a free TCP port on 127.0.0.1 (used by the shell scripts).
import { freePort } from './foundry.mjs';

console.log(await freePort());
