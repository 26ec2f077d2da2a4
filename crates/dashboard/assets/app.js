// Petrel dashboard: a single-page app over the JSON API in /work/notes/dashboard-api.md.
'use strict';
document.getElementById('page').textContent = 'Petrel dashboard';
