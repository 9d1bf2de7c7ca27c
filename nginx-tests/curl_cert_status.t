#!/usr/bin/perl

# curl --cert-status: a real client that validates the staple it gets
# (signature against the CA it trusts, the CertID of the server's
# certificate, thisUpdate and nextUpdate) and fails with exit code 91 when
# there is none. nginx's built-in stapling first, to show the check can
# fail: its first request goes out without a staple. Then the module: once
# the status page shows the staple, the first request and every one after
# it pass.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

plan(skip_all => 'needs curl (apt-get install curl)')
	unless `curl --version 2>/dev/null` =~ /^curl /;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(8);
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('site.test', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
my $d = $t->testdir;
my $tls = port(8081);

my $site = <<'EOF';
    server {
        listen 127.0.0.1:8081 ssl;
        server_name site.test;
        ssl_certificate site.test.chain.crt;
        ssl_certificate_key site.test.key;
        ssl_stapling on;
        ssl_stapling_verify on;
        ssl_trusted_certificate root.crt;
        location / { return 200 "site\n"; }
    }
EOF

# Exit code and output of one curl request that demands a valid staple.
sub curl {
	my $out = `curl --silent --show-error --cert-status --cacert $d/root.crt --max-time 10 --resolve site.test:$tls:127.0.0.1 https://site.test:$tls/ 2>&1`;
	my $rc = $? >> 8;
	chomp $out;
	return ($rc, $out);
}

# nginx alone.
$t->without_module->write_file_expand('nginx.conf',
	"%%TEST_GLOBALS%%\ndaemon off;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n$site}\n");
$t->run;
my ($rc, $out) = curl();
is($rc, 91, "nginx's built-in: the first request has no staple (curl exits 91)");
like($out, qr/OCSP/i, "nginx's built-in: curl says why ($out)");
ok(wait_for(sub { (curl())[0] == 0 }, 10),
	"nginx's built-in: a later request passes (the setup can pass)");
$t->stop;
my $builtin_requests = $t->ocsp_requests;

# The module.
$t->with_module->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

events { }
http {
    %%TEST_GLOBALS_HTTP%%

$site
    server {
        listen 127.0.0.1:8082;
        location = /status { ssl_stapling_status; }
    }
}
EOF
$t->run;
ok(wait_for(sub {
	my $p = $t->status_page(port(8082)) or return;
	grep { ($_->{status} // '') eq 'good' } @{$p->{certificates}};
}, 10), 'the module: the status page shows the staple, before any client');
is($t->ocsp_requests - $builtin_requests, 1, 'the module: one responder request');
($rc, $out) = curl();
is($rc, 0, 'the module: the first request passes curl --cert-status');
is($out, 'site', 'the module: and gets the page');
my @rcs = map { (curl())[0] } 1 .. 5;
is("@rcs", '0 0 0 0 0', 'the module: so do the next five');

