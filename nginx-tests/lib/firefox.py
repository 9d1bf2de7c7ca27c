#!/usr/bin/env python3
"""Drives Firefox ESR, headless, through Marionette (Mozilla's own client,
the marionette-driver package) for nginx-tests/browser.t.

    firefox.py PROFILE_DIR PORT URL...

PROFILE_DIR is a fresh profile (the test put its CA in it with certutil
and its preferences in user.js, Marionette on PORT). Firefox is started
once, each URL is loaded in turn, in a new tab (the test starts a fresh
Firefox with a fresh profile for each case it compares). One JSON line is
printed per URL:

    {"url": ..., "loaded": true|false, "title": ..., "error": "<the error
     code Firefox shows, e.g. MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING>",
     "document": "<documentURI>", "text": "<the page's text>",
     "screenshot": "<PNG file>"}

A URL may be followed by "@NAME" to save its screenshot as NAME.png in
PROFILE_DIR/.. (the test's directory). With --stdin, URLs are read from
standard input instead, one per line, each answered before the next is
read, after a first line {"ready": true} once Firefox is up: the test
decides when each load happens.
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

from marionette_driver.marionette import Marionette
from marionette_driver import errors


def start(profile, port):
    firefox = os.environ.get('FIREFOX', 'firefox-esr')
    log = open(os.path.join(profile, '..', 'firefox.log'), 'ab')
    proc = subprocess.Popen(
        [firefox, '--headless', '--marionette', '--no-remote', '--new-instance',
         '--profile', profile, 'about:blank'],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while True:
        try:
            m = Marionette(host='127.0.0.1', port=port, socket_timeout=60,
                           startup_timeout=5)
            m.start_session()
            return proc, m
        except Exception:  # not listening yet
            if proc.poll() is not None or time.time() > deadline:
                stop(proc)
                raise
            time.sleep(0.25)


def stop(proc):
    """Firefox and the processes it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            pass


def load(m, url, shot):
    out = {'url': url, 'loaded': True, 'exception': None}
    try:
        m.navigate(url)
    except (errors.MarionetteException, IOError) as e:
        out['loaded'] = False
        out['exception'] = str(e).splitlines()[0][:300]
    # The page's text, shadow roots included (Firefox's error pages are
    # made of custom elements), once it is there: error pages fill in
    # their text (localized) after the load.
    script = """
        function text(n) {
            let s = '';
            if (n.shadowRoot) s += text(n.shadowRoot);
            for (const c of n.childNodes) {
                if (c.nodeType === 3) s += c.textContent + ' ';
                else if (c.nodeType === 1 && !['SCRIPT', 'STYLE'].includes(c.tagName)) s += text(c);
                else if (c.nodeType === 11) s += text(c);
            }
            return s;
        }
        return [document.title, document.documentURI,
                text(document.documentElement).replace(/\\s+/g, ' ').trim()];
    """
    info = ['', '', '']
    deadline = time.time() + 10
    while True:
        try:
            info = m.execute_script(script)
        except errors.MarionetteException as e:
            out['exception'] = (out['exception'] or '') + ' / ' + str(e).splitlines()[0][:200]
        if info[2] or time.time() > deadline:
            break
        time.sleep(0.2)
    out['title'], out['document'], out['text'] = info
    if out['document'].startswith('about:neterror') or out['document'].startswith('about:certerror'):
        out['loaded'] = False
    codes = re.findall(r'\b(?:MOZILLA_PKIX_ERROR|SEC_ERROR|SSL_ERROR)_[A-Z_]+\b',
                       out['text'] + ' ' + out['document'] + ' ' + (out['exception'] or ''))
    out['error'] = codes[0] if codes else ''
    try:
        png = base64.b64decode(m.screenshot())
        with open(shot, 'wb') as f:
            f.write(png)
        out['screenshot'] = shot
    except Exception as e:  # a screenshot is evidence, not the result
        out['screenshot'] = 'failed: %s' % e
    return out


def main():
    args = sys.argv[1:]
    use_stdin = args and args[0] == '--stdin'
    if use_stdin:
        args = args[1:]
    profile, port = args[0], int(args[1])
    # Stopped by the test (TERM): Firefox is stopped too, in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    urls = iter(sys.stdin.readline, '') if use_stdin else iter(args[2:])
    proc, m = start(profile, port)
    if use_stdin:
        print(json.dumps({'ready': True}), flush=True)
    try:
        n = 0
        for spec in urls:
            spec = spec.strip()
            if not spec:
                continue
            n += 1
            url, _, name = spec.partition('@')
            shot = os.path.join(profile, '..', '%s.png' % (name or 'load-%d' % n))
            # A new tab for each load.
            handle = m.open(type='tab', focus=True)['handle']
            m.switch_to_window(handle)
            print(json.dumps(load(m, url, shot)), flush=True)
            m.close()
            m.switch_to_window(m.window_handles[0])
    finally:
        try:
            m.delete_session()
        except Exception:
            pass
        stop(proc)


if __name__ == '__main__':
    main()
