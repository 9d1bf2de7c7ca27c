#!/usr/bin/perl

# The module's directives refuse what nginx refuses for its own: each one
# given twice in one context is "is duplicate", and bad values name
# themselves. And ssl_stapling_max_size: nginx's own code never staples a
# response over 16 KB (it reads one 16 KB buffer); neither does the module
# by default, saying why, and the directive raises the limit.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(51);
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('site', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->make_cert('filler', ca => 'root');

# A responder whose answers carry 24 extra certificates: about 20 KB.
$t->write_file('extra.pem', $t->read_file('filler.crt') x 24);
$t->start_daemon('ocsp', qr/waiting for OCSP client connections/,
	'openssl', 'ocsp', '-port', $ocsp, '-index', 'root.index',
	'-CA', 'root.crt', '-rsigner', 'root.crt', '-rkey', 'root.key',
	'-rother', 'extra.pem', '-ndays', '1');

my $server = <<'EOF';
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

# nginx -t writes its refusals to the error log too.
$t->expect_log(qr/\[emerg\] .*(?:is duplicate|invalid value|invalid parameter|invalid "ssl_stapling_proxy"|is longer than the longest fetch timeout|ssl_stapling_store: |invalid Redis URL)/);

my %main = (
	ssl_stapling_zone => 'one:64k',
	ssl_stapling_refresh => '0.5',
	ssl_stapling_fetch_timeout => '5s',
	ssl_stapling_fetch_concurrency => '2',
	ssl_stapling_dynamic_max => '10',
	ssl_stapling_serve_revoked => 'off',
	ssl_stapling_max_size => '16k',
	ssl_stapling_max_age => '15m',
	ssl_stapling_time_skew => '5m',
	ssl_stapling_refresh_min_interval => '10s',
);
for my $d (sort keys %main) {
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n$d $main{$d};\n$d $main{$d};\nevents { }\n$server");
	my ($rc, $out) = $t->test_config;
	isnt($rc, 0, "$d twice: nginx -t fails");
	like($out, qr/\[emerg\] "\Q$d\E" directive is duplicate/, "$d twice: \"is duplicate\"");
}
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n    ssl_stapling_store a;\n    ssl_stapling_store b;\n}\n");
my ($rc, $out) = $t->test_config;
like($out, qr/\[emerg\] "ssl_stapling_store" directive is duplicate/, 'ssl_stapling_store twice: "is duplicate"');
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n    ssl_stapling_store a sharing;\n}\n");
($rc, $out) = $t->test_config;
like($out, qr/\[emerg\] invalid parameter "sharing", it must be "shared" after a path/, 'ssl_stapling_store a sharing: refused');

for my $bad ('512', '65k', 'lots') {
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nssl_stapling_max_size $bad;\nevents { }\n$server");
	($rc, $out) = $t->test_config;
	like($out, qr/\[emerg\] invalid value "\Q$bad\E", it must be 1k\.\.64k/, "ssl_stapling_max_size $bad: refused");
}

for my $bad (['ssl_stapling_max_age', '0'], ['ssl_stapling_max_age', 'soon'],
	['ssl_stapling_time_skew', '-1'], ['ssl_stapling_time_skew', 'off'],
	['ssl_stapling_refresh_min_interval', 'soon'])
{
	my ($d, $v) = @$bad;
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n$d $v;\nevents { }\n$server");
	($rc, $out) = $t->test_config;
	like($out, qr/\[emerg\] invalid value "\Q$v\E"/, "$d $v: refused");
}
for my $good (['ssl_stapling_max_age', 'off'], ['ssl_stapling_max_age', '"1h 30m"'],
	['ssl_stapling_time_skew', '0'], ['ssl_stapling_refresh_min_interval', '0'],
	['ssl_stapling_fetch_timeout', '10m'])
{
	my ($d, $v) = @$good;
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n$d $v;\nevents { }\n$server");
	($rc, $out) = $t->test_config;
	is($rc, 0, "$d $v: accepted");
}

# Valkey/Redis stores: their parameters, and what is wrong with them.
for my $bad (['redis://127.0.0.1 bogus=1', qr/invalid parameter "bogus=1", it must be "prefix=", "password_file=" or "ca=" after a Redis URL/],
	['redis://127.0.0.1:notaport', qr/invalid Redis URL/],
	['redis://127.0.0.1 ca=root.crt', qr/ssl_stapling_store: "ca=" is for rediss:\/\/ URLs \(TLS\)/],
	['redis://127.0.0.1 password_file=nonexistent', qr/ssl_stapling_store: cannot read the password file "[^"]*\/nonexistent": No such file/])
{
	my ($v, $msg) = @$bad;
	(my $conf = $server) =~ s/(%%TEST_GLOBALS_HTTP%%\n)/$1    ssl_stapling_store $v;\n/;
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\n$conf");
	($rc, $out) = $t->test_config;
	like($out, qr/\[emerg\] $msg/, "ssl_stapling_store $v: refused");
}
(my $conf = $server) =~ s/(%%TEST_GLOBALS_HTTP%%\n)/$1    ssl_stapling_store "rediss:\/\/u:pw\@127.0.0.1:6380\/2" prefix=x: ca=root.crt password_file=root.index;\n/;
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\n$conf");
($rc, $out) = $t->test_config;
is($rc, 0, 'ssl_stapling_store rediss:// with prefix, ca and password_file: accepted');

# A lease in a shared store lasts the fetch timeout and a margin: bounded.
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nssl_stapling_fetch_timeout 11m;\nevents { }\n$server");
($rc, $out) = $t->test_config;
like($out, qr/\[emerg\] "11m" is longer than the longest fetch timeout, 10m/, 'ssl_stapling_fetch_timeout 11m: refused');

for my $bad (['https://p:3128', qr/invalid "ssl_stapling_proxy": only http:\/\/ responders are supported/],
	['http://user@p:3128', qr/invalid "ssl_stapling_proxy": invalid URL, expected http:\/\/\[user:password\@\]host:port/])
{
	my ($v, $msg) = @$bad;
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n    ssl_stapling_proxy $v;\n}\n");
	($rc, $out) = $t->test_config;
	like($out, qr/\[emerg\] $msg/, "ssl_stapling_proxy $v: refused");
}
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n    ssl_stapling_proxy http://a:1;\n    ssl_stapling_proxy off;\n}\n");
($rc, $out) = $t->test_config;
like($out, qr/\[emerg\] "ssl_stapling_proxy" directive is duplicate/, 'ssl_stapling_proxy twice: "is duplicate"');
SKIP: {
	skip 'stream servers have ssl_stapling since nginx 1.27.2', 1 unless $t->stream_stapling;
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\nstream {\n    %%TEST_GLOBALS_STREAM%%\n    ssl_stapling_proxy http://proxy.test:3128;\n"
		. "    server {\n        listen 127.0.0.1:8444;\n        ssl_stapling_proxy off;\n"
		. "        return x;\n    }\n}\n");
	($rc, $out) = $t->test_config;
	is($rc, 0, 'ssl_stapling_proxy in stream and a stream server: accepted') or diag($out);
}

$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n    server {\n        listen 127.0.0.1:8444;\n"
	. "        location / { ssl_stapling_status now; }\n    }\n}\n");
($rc, $out) = $t->test_config;
like($out, qr/\[emerg\] invalid value "now", it must be "refresh" or nothing/, 'ssl_stapling_status now: refused');

# The default: a 20 KB response is not stapled, and the log says why.
# (Stapled, it would make TLS 1.2 handshakes of OpenSSL clients fail.)
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nworker_processes 2;\nevents { }\n$server");
$t->run(workers => 2);
ok(wait_for(sub {
	$t->read_file('error.log') =~ /cannot fetch OCSP response for certificate "[^"]*site\.chain\.crt" from \S+: OCSP response of (\d+) bytes is larger than ssl_stapling_max_size \(16384 bytes\)/
		&& $1 > 16384
}, 10), 'a response over 16 KB: refused, the log names its size and the limit');
my $r = $t->handshake(port(8443));
ok($r->{ok} && !defined $r->{staple}, 'a response over 16 KB: not stapled');
$t->stop;

# Raised: a warning (TLS 1.2 OpenSSL clients refuse a CertificateStatus
# message over 16 KB: "illegal parameter"), and stapled in TLS 1.3.
(my $tls13 = $server) =~ s/(ssl_stapling on;)/$1\n        ssl_protocols TLSv1.3;/;
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nworker_processes 2;\nssl_stapling_max_size 32k;\nevents { }\n$tls13");
$t->run(workers => 2);
like($t->read_file('error.log'), qr/\[warn\] .*a staple over 16k makes TLS 1\.2 handshakes with OpenSSL clients fail/,
	'ssl_stapling_max_size over 16k: a warning about TLS 1.2 clients');
my $staple = wait_for(sub { $t->handshake(port(8443))->{staple} }, 10);
ok($staple && length($staple) > 16384 && length($staple) <= 32768,
	'ssl_stapling_max_size 32k: the ' . length($staple // '') . '-byte response is stapled');
is(scalar(() = $t->staple_serials($staple)), 1, 'the staple is the response for the certificate');
