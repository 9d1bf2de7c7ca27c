#!/usr/bin/perl

# ssl_stapling_verify as in nginx: responses signed by a delegated OCSP
# signer are only stapled when its root is trusted (ssl_trusted_certificate);
# without verification the signature alone is checked.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(5);
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('signer', ca => 'root', ext => 'extendedKeyUsage=OCSPSigning');
for my $name (qw(untrusted trusted noverify)) {
	$t->make_cert($name, ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/");
}
$t->start_ocsp_responder(ca => 'root', signer => 'signer', port => $ocsp);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    server {
        listen 127.0.0.1:8083 ssl;
        ssl_certificate untrusted.chain.crt;
        ssl_certificate_key untrusted.key;
        ssl_stapling_verify on;
    }
    server {
        listen 127.0.0.1:8081 ssl;
        ssl_certificate trusted.chain.crt;
        ssl_certificate_key trusted.key;
        ssl_stapling_verify on;
        ssl_trusted_certificate root.crt;
    }
    server {
        listen 127.0.0.1:8082 ssl;
        ssl_certificate noverify.chain.crt;
        ssl_certificate_key noverify.key;
        ssl_stapling_verify off;
    }
}
EOF
$t->run;

ok(wait_for(sub { $t->handshake(port(8081))->{staple} }, 20),
	'verify on, root trusted: stapled');
ok(wait_for(sub { $t->handshake(port(8082))->{staple} }, 20),
	'verify off: stapled');

ok(wait_for(sub {
	$t->read_file('error.log') =~ /cannot fetch OCSP response for certificate "[^"]*\/untrusted\.chain\.crt" from \S+: OCSP response signature verification failed/
}, 20), 'verify on, root untrusted: an error-log line names the certificate and the cause');
my $r = $t->handshake(port(8083));
ok($r->{ok}, 'verify on, root untrusted: TLS served');
ok(!defined $r->{staple}, 'verify on, root untrusted: no staple');

