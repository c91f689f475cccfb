// Passkeys (WebAuthn), as progressive enhancement: a static file, since the Content Security
// Policy allows no inline script. The server puts the ceremony's options in a
// <script type="application/json" id="passkey-options"> block (data, never executed); this
// script asks the browser to make or use the passkey and posts the browser's answer, as JSON,
// in the form's hidden "code" field. Without WebAuthn (or without JavaScript) nothing here
// runs: the passkey choice stays hidden and the other keys work as before.
(function () {
  "use strict";

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials);
  }

  function toBytes(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(options) {
    var o = Object.assign({}, options);
    o.challenge = toBytes(o.challenge);
    o.user = Object.assign({}, o.user, { id: toBytes(o.user.id) });
    o.excludeCredentials = (o.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return o;
  }

  function requestOptions(options) {
    var o = Object.assign({}, options);
    o.challenge = toBytes(o.challenge);
    o.allowCredentials = (o.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return o;
  }

  function answer(credential) {
    var r = credential.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      response.userHandle = toBase64url(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
    });
  }

  function readOptions() {
    var block = document.getElementById("passkey-options");
    return block ? JSON.parse(block.textContent) : null;
  }

  function ceremony(button) {
    var data = readOptions();
    var form = button.form;
    var status = document.getElementById("passkey-status");
    if (!data || !form) {
      return;
    }
    button.disabled = true;
    var call =
      data.mode === "create"
        ? navigator.credentials.create({ publicKey: creationOptions(data.publicKey) })
        : navigator.credentials.get({ publicKey: requestOptions(data.publicKey) });
    call
      .then(function (credential) {
        form.querySelector("input[name$='code']").value = answer(credential);
        form.submit();
      })
      .catch(function () {
        button.disabled = false;
        if (status) {
          status.textContent = button.getAttribute("data-error-text");
        }
      });
  }

  // Sign-in with the passkey alone: the browser offers the citizen's passkeys in the username
  // field's autofill (conditional mediation); choosing one posts its answer.
  function conditional(form) {
    if (!PublicKeyCredential.isConditionalMediationAvailable) {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) {
        return;
      }
      var token = form.querySelector("input[name='csrfmiddlewaretoken']").value;
      fetch(form.getAttribute("data-options-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": token },
      })
        .then(function (response) {
          return response.ok ? response.json() : Promise.reject(response.status);
        })
        .then(function (options) {
          return navigator.credentials.get({
            mediation: "conditional",
            publicKey: requestOptions(options),
          });
        })
        .then(function (credential) {
          if (credential) {
            form.querySelector("input[name='code']").value = answer(credential);
            form.submit();
          }
        })
        .catch(function () {
          // Dismissed, timed out or refused: signing in with username and password stays.
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!supported()) {
      return;
    }
    document.querySelectorAll("[data-webauthn-only]").forEach(function (element) {
      element.hidden = false;
    });
    document.querySelectorAll("[data-webauthn-missing]").forEach(function (element) {
      element.hidden = true;
    });
    document.querySelectorAll("[data-passkey-ceremony]").forEach(function (button) {
      button.addEventListener("click", function () {
        ceremony(button);
      });
    });
    var passkeySignin = document.getElementById("passkey-signin");
    if (passkeySignin) {
      conditional(passkeySignin);
    }
  });
})();
