// Warden's one script: the WebAuthn calls passkeys need (the browser's
// navigator.credentials API has no form-only equivalent). Everything else works without it.
// A form marked data-passkey is shown only where the browser can use passkeys; on submit it
// gets its options (data-options, or a POST to data-begin with the page's CSRF token), asks
// the authenticator, and posts the answer as JSON in the form's hidden fields.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  function bytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }
  function text(buffer) {
    if (!buffer) { return null; }
    var raw = "";
    var view = new Uint8Array(buffer);
    for (var i = 0; i < view.length; i++) { raw += String.fromCharCode(view[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function publicKey(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = bytes(pk.challenge);
    if (pk.user) { pk.user = Object.assign({}, pk.user, { id: bytes(pk.user.id) }); }
    ["allowCredentials", "excludeCredentials"].forEach(function (key) {
      if (pk[key]) { pk[key] = pk[key].map(function (c) { return Object.assign({}, c, { id: bytes(c.id) }); }); }
    });
    return pk;
  }
  function answer(credential) {
    var r = credential.response;
    var response = { clientDataJSON: text(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = text(r.attestationObject);
      if (r.getTransports) { response.transports = r.getTransports(); }
    } else {
      response.authenticatorData = text(r.authenticatorData);
      response.signature = text(r.signature);
      response.userHandle = text(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id,
      rawId: text(credential.rawId),
      type: credential.type,
      response: response,
      extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}
    });
  }
  function say(form, message) {
    var p = form.querySelector(".field-error");
    if (!p) {
      p = document.createElement("p");
      p.className = "field-error";
      p.setAttribute("role", "alert");
      form.appendChild(p);
    }
    p.textContent = message;
  }
  async function options(form) {
    if (form.dataset.options) {
      return { options: JSON.parse(form.dataset.options), ceremony: null };
    }
    var body = new URLSearchParams();
    body.set("csrf", form.elements.csrf.value);
    var reply = await fetch(form.dataset.begin, { method: "POST", body: body, credentials: "same-origin" });
    var json = await reply.json();
    if (!reply.ok && json.code === "session.not_elevated") {
      // As every other form of the page: confirm it is you, then come back here.
      window.location.assign("/reauth?rd=" + encodeURIComponent(location.pathname + location.search));
      return null;
    }
    if (!reply.ok) { throw new Error(json.detail || "The server refused to start."); }
    return { options: json.options, ceremony: json.ceremony };
  }
  async function run(form) {
    var kind = form.dataset.passkey;
    var got = await options(form);
    if (!got) { return; }
    var pk = publicKey(got.options);
    var credential = kind === "register"
      ? await navigator.credentials.create({ publicKey: pk })
      : await navigator.credentials.get({ publicKey: pk });
    if (!credential) { throw new Error("No passkey was chosen."); }
    if (kind === "second-factor") {
      form.elements.passkey.value = answer(credential);
    } else {
      form.elements.ceremony.value = got.ceremony;
      form.elements.credential.value = answer(credential);
    }
    form.submit();
  }
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; }
      run(form).catch(function (e) {
        if (button) { button.disabled = false; }
        say(form, e && e.name === "NotAllowedError" ? "The passkey was not used (cancelled or timed out)." : (e && e.message) || "The passkey did not work.");
      });
    });
  });
})();
