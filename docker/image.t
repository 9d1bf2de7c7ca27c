#!/usr/bin/perl

# The image docker/Dockerfile makes, used as its README says: a site in
# /etc/nginx/conf.d/, its certificate mounted read-only, the store on a
# volume, port 443 published. Checked from outside the container, by curl
# --cert-status (it validates the staple; exit 91 when there is none):
# the first request is stapled; podman stop ends nginx gracefully; a new
# container on the same volume staples its first request from the store
# while the responder is down.
#
# Run by scripts/docker-test (STAPLING_IMAGE names the image; podman
# configured by CONTAINERS_CONF and CONTAINERS_STORAGE_CONF).

use strict;
use warnings;

use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

# The nginx under test is the image's: no nginx of the host's is run.
BEGIN { $ENV{TEST_NGINX_BINARY} = '/bin/true' }
use Test::Nginx;
use Test::Nginx::Stapling;

my $image = $ENV{STAPLING_IMAGE} or plan(skip_all => 'STAPLING_IMAGE is not set');
my $name = "stapling-image-test-$$";
my $volume = "stapling-image-test-$$";

# A command's exit code and output.
sub cmd {
	my $out = `@_ 2>&1`;
	return ($? >> 8, $out);
}

sub podman { cmd('podman', @_) }

END {
	local $?;
	podman('rm', '-f', '-t', '0', "$name-$_") for 1, 2;
	podman('volume', 'rm', '-f', $volume);
}

# The host as the containers see it: the gateway of podman's network.
my ($rc, $gw) = podman('network', 'inspect', 'podman',
	'--format', "'{{range .Subnets}}{{.Gateway}}{{end}}'");
chomp $gw;
die "no gateway for podman's network ($rc): $gw\n" unless $rc == 0 && $gw =~ /^[\d.]+$/;

my $t = Test::Nginx::Stapling->new->has_daemon('openssl')->has_daemon('curl')->plan(16);
my $d = $t->testdir;
my $ocsp = port(8080);
my $https = port(8443);
$t->make_ca('root');
$t->make_cert('site.test', ca => 'root', ocsp => "http://$gw:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

mkdir "$d/site";
$t->write_file("site/$_", $t->read_file($_))
	for 'site.test.chain.crt', 'site.test.key', 'root.crt';
$t->write_file('site.conf', <<'EOF');
server {
    listen 443 ssl;
    server_name site.test;
    ssl_certificate     /etc/nginx/site/site.test.chain.crt;
    ssl_certificate_key /etc/nginx/site/site.test.key;
    ssl_stapling on;
    ssl_stapling_verify on;
    ssl_trusted_certificate /etc/nginx/site/root.crt;
    location / { return 200 "site\n"; }
}
EOF

($rc, my $out) = podman('volume', 'create', $volume);
is($rc, 0, 'volume created') or diag($out);

sub start {
	my ($n) = @_;
	my ($rc, $out) = podman('run', '-d', '--name', "$name-$n",
		'-p', "127.0.0.1:$https:443",
		'-v', "$d/site:/etc/nginx/site:ro",
		'-v', "$d/site.conf:/etc/nginx/conf.d/site.conf:ro",
		'-v', "$volume:/var/cache/nginx/ssl_stapling", $image);
	is($rc, 0, "container $n started") or diag($out);
}

sub curl {
	my ($rc, $out) = cmd("curl --silent --show-error --cert-status --cacert $d/root.crt"
		. " --max-time 10 --resolve site.test:$https:127.0.0.1 https://site.test:$https/");
	chomp $out;
	return ($rc, $out);
}

# The module's status page, from inside the container.
sub status {
	my ($n) = @_;
	my ($rc, $out) = podman('exec', "$name-$n", 'curl', '-s',
		'http://127.0.0.1:8080/stapling-status?detail=all');
	return $rc == 0 ? eval { decode_json($out) } : undef;
}

sub logs {
	my ($n) = @_;
	return (podman('logs', "$name-$n"))[1];
}

# The port answers TCP: nginx listens (the TLS request comes after).
sub listening {
	return IO::Socket::INET->new(PeerAddr => "127.0.0.1:$https", Timeout => 2);
}

start(1);
ok(wait_for(sub {
	my $s = status(1) or return;
	grep { ($_->{status} // '') eq 'good' } @{$s->{certificates}};
}, 60), 'the status page inside the container shows the staple, before any client')
	or diag(logs(1));
is($t->ocsp_requests, 1, 'the responder got one request');
($rc, $out) = curl();
is($rc, 0, 'first request from outside: curl --cert-status passes') or diag($out);
is($out, 'site', 'and gets the page');

my $t0 = time;
($rc, $out) = podman('stop', '-t', '60', "$name-1");
my $took = time - $t0;
is($rc, 0, 'podman stop') or diag($out);
diag(sprintf 'podman stop took %.2f s', $took);
my ($code) = (podman('inspect', '--format', "'{{.State.ExitCode}}'", "$name-1"))[1] =~ /(\d+)/;
is($code, 0, 'nginx exited with 0 (SIGQUIT, not killed)');
my $log1 = logs(1);
like($log1, qr/gracefully shutting down/, 'nginx shut down gracefully');
like($log1, qr/module took over 1 certificate\(s\), 1 staple\(s\)/, 'the module took over the site');

$t->stop_daemon('ocsp');
start(2);
ok(wait_for(\&listening, 60), 'container 2 listens') or diag(logs(2));
($rc, $out) = curl();
is($rc, 0, 'responder down, new container, same volume: the first request is stapled')
	or diag($out);
my @rcs = map { (curl())[0] } 1 .. 3;
is("@rcs", '0 0 0', 'and the next three');
like(logs(2), qr/1 staple\(s\)[^\n]* 1 from the store/, 'container 2 took the staple from the store');
($rc, $out) = podman('stop', '-t', '60', "$name-2");
is($rc, 0, 'podman stop 2') or diag($out);

# nginx's logs in both containers, where the harness's end-of-test checks
# read them (no [alert], [crit], [emerg], signal or panic).
$t->write_file('error.log', logs(1) . logs(2));

