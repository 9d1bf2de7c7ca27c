#!/usr/bin/perl

# A certificate revoked while its good staple is served: the staple stops
# at once (nginx would keep serving the good one until it expires) and an
# error is logged; with ssl_stapling_serve_revoked on, the revoked response
# is stapled instead.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(6);
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('site', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

my $conf = <<'EOF';
ssl_stapling_refresh 1s;
%%REVOKED%%
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
    }
}
EOF
(my $c = $conf) =~ s/%%REVOKED%%//;
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $c);
$t->run;

my $good = wait_for(sub { $t->handshake(port(8443))->{staple} }, 20);
like($t->staple_text($good), qr/Cert Status: good/, 'good staple served');

# Revoke; restart the responder so it reads its index again.
$t->set_status('site', ca => 'root', status => 'revoked');
$t->stop_daemon('ocsp');
$t->start_ocsp_responder(ca => 'root', port => $ocsp, name => 'ocsp2');

ok(wait_for(sub { $t->unstapled(port(8443)) }, 10),
	'the good staple stops as soon as the revocation is fetched');
like($t->read_file('error.log'), qr/\[error\] .*ssl_stapling: certificate "[^"]*\/site\.chain\.crt" is revoked/,
	'revocation logged at error');
my $unstapled = grep { $t->unstapled(port(8443)) } 1 .. 5;
is($unstapled, 5, 'no staple while revoked (5 handshakes)');

($c = $conf) =~ s/%%REVOKED%%/ssl_stapling_serve_revoked on;/;
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $c);
ok(defined $t->reload, 'reloaded with ssl_stapling_serve_revoked on');
my $revoked = wait_for(sub { $t->handshake(port(8443))->{staple} }, 10);
like($t->staple_text($revoked), qr/Cert Status: revoked/,
	'serve_revoked on: the revoked response is stapled');

$t->expect_log(qr/\[error\] .*is revoked/);
