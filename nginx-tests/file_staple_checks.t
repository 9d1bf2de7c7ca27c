#!/usr/bin/perl

# Staple files that fail a check: a warning naming the file, the
# certificate and the reason; nginx starts and serves TLS; nothing is
# stapled (nginx alone would staple each of these files as it is).
# A file that is not DER at all is refused by nginx itself, with [emerg].

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(14 + 3); # 3: the end-of-test checks of $bad, below
$t->make_ca('root');
$t->make_cert('site', ca => 'root');
$t->make_cert('other', ca => 'root');
$t->ocsp_response('other.der', ca => 'root', certs => ['other']);
# made "two days ago", valid for one day: expired yesterday
$t->ocsp_response('expired.der', ca => 'root', certs => ['site'], shift => '-2d');
# made "tomorrow": thisUpdate a day in the future
$t->ocsp_response('future.der', ca => 'root', certs => ['site'], shift => '+1d');
$t->ocsp_response('good.der', ca => 'root', certs => ['site']);

my $servers = '';
my %port = (other => 8443, expired => 8444, future => 8445, good => 8446);
for my $f (sort keys %port) {
	$servers .= <<"EOF";
    server {
        listen 127.0.0.1:$port{$f} ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
        ssl_stapling_file $f.der;
        location / { return 200 "$f\\n"; }
    }
EOF
}
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n$servers}\n");
$t->run;

my $log = $t->read_file('error.log');
my %reason = (
	other => qr/no status for this certificate in the OCSP response/,
	expired => qr/OCSP response expired \d+ s ago/,
	future => qr/OCSP response has a thisUpdate \d+ s in the future/,
);
for my $f (sort keys %reason) {
	like($log, qr/\[warn\] .*"ssl_stapling_file" ".*\/$f\.der" ignored for certificate ".*site\.chain\.crt": $reason{$f}/,
		"$f: warning names file, certificate and reason");
	my $r = $t->handshake(port($port{$f}), request => "GET / HTTP/1.0\r\n\r\n");
	ok($r->{ok} && ($r->{response} // '') =~ /^HTTP\/1\.1 200 .*\Q$f\E\n$/s,
		"$f: TLS served normally");
	ok(!defined $r->{staple}, "$f: no staple");
}

my $r = $t->handshake(port($port{good}));
is($r->{staple}, $t->read_file('good.der'), 'good file beside them is stapled');
unlike($log, qr/good\.der" ignored/, 'good file: no warning');

$t->stop;

# Not DER at all: nginx's own ssl module refuses the configuration.
my $bad = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl');
$bad->make_ca('root');
$bad->make_cert('site', ca => 'root');
$bad->write_file('garbage.der', "this is not an OCSP response\n");
$bad->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
        ssl_stapling_file garbage.der;
    }
}
EOF
# Test::Nginx's run dies when nginx does not start.
ok(!eval { $bad->run; 1 }, 'nginx refuses to start with a non-DER staple file');
my (undef, $out) = $bad->test_config;
like($out, qr/\[emerg\].*d2i_OCSP_RESPONSE_bio\(".*garbage\.der"\) failed/,
	'the [emerg] reaches the user');
ok(!-e $bad->testdir . '/nginx.pid', 'no nginx left running');
$bad->expect_log(qr/\[emerg\].*d2i_OCSP_RESPONSE_bio/);
