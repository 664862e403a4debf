// The admin page's one piece of script: a Copy button beside the new display's kiosk URL.
// The page works without it (the URL is selectable text); the strict CSP allows this file.

/**
 * Copy the text of the input a button names (`data-copy`), and say so on the button.
 * @param {HTMLButtonElement} button
 */
async function copyFrom(button) {
  const input = /** @type {HTMLInputElement|null} */ (document.getElementById(button.dataset.copy ?? ''));
  if (!input) return;
  try {
    await navigator.clipboard.writeText(input.value);
    button.textContent = 'Copied';
  } catch {
    input.select(); // no clipboard access: leave it selected for Ctrl+C
    button.textContent = 'Press Ctrl+C';
  }
}

for (const button of document.querySelectorAll('button[data-copy]')) {
  button.addEventListener('click', () => void copyFrom(/** @type {HTMLButtonElement} */ (button)));
}
