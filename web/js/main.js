// Entry point: the page's only script (loaded as a module, CSP script-src 'self').

import { App } from './app.js';

new App().start();
