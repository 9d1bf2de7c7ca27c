#!/usr/bin/perl

# A shared store that hangs (a hard NFS mount whose server is gone): store
# calls run off the event loop with the fetch's deadline, so the worker
# keeps serving, says the store did not answer, and fetches from the
# responder. A test build of the module (scripts/build test-hooks) makes
# reading the store hang while a file ".hang" is in it.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->with_hooks_module->plan(6);
my $ocsp = port(8080);
my $store = $t->testdir . '/store';
$t->make_ca('root');
$t->make_cert('site', ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 1;
ssl_stapling_refresh_min_interval 0;
ssl_stapling_fetch_timeout 2s;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    ssl_stapling_store $store shared;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
    }
    server {
        listen 127.0.0.1:8081;
        location = /status { ssl_stapling_status refresh; }
    }
}
EOF
$t->run(workers => 1);
ok(wait_for(sub { $t->handshake(port(8443))->{staple} }, 10), 'stapled');
is($t->ocsp_requests, 1, 'one request');

# The store hangs from now on; a refresh is asked for.
$t->write_file('store/.hang', '');
my ($status) = $t->http_request(port(8081), '/status?refresh=all', method => 'POST');
is($status, 202, 'refresh requested');
ok(wait_for(sub { $t->read_file('error.log') =~ /\[warn\] .*the store "[^"]*\/store" did not answer a read for certificate "[^"]*\/site\.chain\.crt" within 2000 ms; fetching/ }, 10),
	'the store did not answer: a warning, with the deadline');
# One worker only: it kept serving while its store call hung.
ok($t->handshake(port(8443))->{staple}, 'the worker serves, stapled, while the store hangs');
ok(wait_for(sub { $t->ocsp_requests == 2 }, 10), 'and fetched from the responder');
unlink "$store/.hang";

