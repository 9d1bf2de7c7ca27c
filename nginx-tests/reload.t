#!/usr/bin/perl

# nginx -t and nginx -s reload with the module: the zone is reused, the
# first handshake after a reload is stapled, old workers exit promptly,
# a changed staple file takes effect and entries of certificates that left
# the configuration are freed.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(10);
$t->make_ca('root');
$t->make_cert('site', ca => 'root');
$t->make_cert('extra', ca => 'root');
$t->ocsp_response('first.der', ca => 'root', certs => ['site']);
$t->ocsp_response('second.der', ca => 'root', certs => ['site'], ndays => 2);
$t->ocsp_response('extra.der', ca => 'root', certs => ['extra']);

my $conf = <<'EOF';
worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
        ssl_stapling_file %%FILE%%;
    }
    %%EXTRA%%
}
EOF
my $extra = <<'EOF';
    server {
        listen 127.0.0.1:8444 ssl;
        ssl_certificate extra.chain.crt;
        ssl_certificate_key extra.key;
        ssl_stapling on;
        ssl_stapling_file extra.der;
    }
EOF
sub config {
	my ($file, $with_extra) = @_;
	(my $c = $conf) =~ s/%%FILE%%/$file/;
	$c =~ s/%%EXTRA%%/$with_extra ? $extra : ''/e;
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $c);
}

config('first.der', 1);
my ($rc, $out) = $t->test_config;
is($rc, 0, 'nginx -t succeeds with the module');
like($out, qr/test is successful/, 'nginx -t says so');

$t->run(workers => 2);
is($t->handshake(port(8443))->{staple}, $t->read_file('first.der'), 'stapled at start');

my $took = $t->reload;
ok(defined $took, 'same config: old workers gone')
	or diag('took ' . ($took // 'forever'));
my $r = $t->handshake(port(8443));
is($r->{staple}, $t->read_file('first.der'), 'first handshake after reload stapled');
like($t->read_file('error.log'), qr/took over 2 certificate\(s\).*0 stale entr\(ies\) freed, 2 in zone(?s:.*)took over 2 certificate\(s\).*0 stale entr\(ies\) freed, 2 in zone/,
	'zone reused: nothing freed');

config('second.der', 0);
$took = $t->reload;
ok(defined $took, 'changed config: old workers gone')
	or diag('took ' . ($took // 'forever'));
is($t->handshake(port(8443))->{staple}, $t->read_file('second.der'),
	'changed staple file served after reload');
like($t->read_file('error.log'), qr/took over 1 certificate\(s\).*2 stale entr\(ies\) freed, 1 in zone/,
	'entries of the old file and of the removed server freed');

my $stapled = 0;
$stapled += ($t->handshake(port(8443))->{staple} // '') eq $t->read_file('second.der')
	for 1 .. 10;
is($stapled, 10, 'every handshake after the reload stapled');

