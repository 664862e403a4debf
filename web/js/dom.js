// Building DOM nodes without ever parsing markup: every SIP string is hostile, so text only
// goes in as Text nodes (append(string)) or textContent, never as HTML.

/**
 * Create an element. `props.class` sets className, `props.text` sets textContent, keys starting
 * with "on" add event listeners, everything else is an attribute. Children that are strings
 * become Text nodes.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node|string|null|undefined)} children
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') node.className = String(value);
    else if (name === 'text') node.textContent = String(value);
    else if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/**
 * Set an element's text only when it differs, so unchanged cells cost no DOM write.
 * @param {Node} node
 * @param {string} text
 * @returns {boolean} whether the text changed
 */
export function setText(node, text) {
  if (node.textContent === text) return false;
  node.textContent = text;
  return true;
}

/**
 * Remove every child of a node.
 * @param {Node} node
 */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/**
 * Restart a short CSS animation by alternating between two classes with identical keyframes
 * under different names (changing animation-name restarts it without forcing a reflow).
 * @param {Element} node
 * @param {string} prefix e.g. "flash" toggles "flash-a"/"flash-b"
 */
export function restartAnimation(node, prefix) {
  const list = node.classList;
  if (list.contains(`${prefix}-a`)) list.replace(`${prefix}-a`, `${prefix}-b`);
  else {
    list.remove(`${prefix}-b`);
    list.add(`${prefix}-a`);
  }
}

/**
 * Remove the classes restartAnimation adds.
 * @param {Element} node
 * @param {string} prefix
 */
export function stopAnimation(node, prefix) {
  node.classList.remove(`${prefix}-a`, `${prefix}-b`);
}
