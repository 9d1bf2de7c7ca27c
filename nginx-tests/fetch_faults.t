#!/usr/bin/perl

# A bad responder costs a log line and a retry, never a bad staple: one
# certificate per fault, each first stapled from a good answer, then the
# responder turns bad. For each: a line naming the certificate and the
# cause, the previous good staple still served, nginx healthy.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(59);
my ($dns, $faults, $refusing) = (port(8980, udp => 1), port(8081), port(8082));

my %cause = (
	http500 => qr/responder sent HTTP status 500/,
	http404 => qr/responder sent HTTP status 404/,
	garbage => qr/not a DER-encoded OCSP response/,
	truncated => qr/closed the connection before the end of the response/,
	huge => qr/larger than 65536 bytes/,
	other => qr/no status for this certificate in the OCSP response/,
	untrusted => qr/OCSP response signature verification failed/,
	expired => qr/OCSP response expired \d+ s ago/,
	future => qr/OCSP response has a thisUpdate \d+ s in the future/,
	trylater => qr/OCSP response status is "tryLater"/,
	unknown => qr/certificate status "unknown" in the OCSP response/,
	refused => qr/connect\(\) to 127\.0\.0\.1:$refusing failed \(111: Connection refused\)/,
	hang => qr/timed out/,
	nxdomain => qr/nx\.test could not be resolved \(Host not found\)/,
);
my @cases = sort keys %cause;
my %port = map { $cases[$_] => 8443 + $_ } 0 .. $#cases;

$t->make_ca('root');
$t->make_ca('rogue');
$t->make_cert('bystander', ca => 'root', type => 'ec');
$t->make_cert($_, ca => 'root', type => 'ec') for @cases;
for my $case (@cases) {
	$t->ocsp_response("$case.good.der", ca => 'root', certs => [$case]);
}
$t->ocsp_response('other.der', ca => 'root', certs => ['bystander']);
$t->ocsp_response('expired.der', ca => 'root', certs => ['expired'], shift => '-2d');
$t->ocsp_response('future.der', ca => 'root', certs => ['future'], shift => '+1d');
# the untrusted certificate's status, signed by a CA nginx does not trust
$t->set_status('untrusted', ca => 'rogue', status => 'good');
$t->run_cmd('openssl ocsp -index rogue.index -CA root.crt -rsigner rogue.crt'
	. ' -rkey rogue.key -issuer root.crt -cert untrusted.crt'
	. ' -respout untrusted-rogue.der -ndays 1');
# a responder that does not know the certificate answers "unknown"
$t->write_file('empty.index', '');
$t->run_cmd('openssl ocsp -index empty.index -CA root.crt -rsigner root.crt'
	. ' -rkey root.key -issuer root.crt -cert unknown.crt'
	. ' -respout unknown-status.der -ndays 1');
# OCSPResponse { responseStatus tryLater(3) }
$t->write_file('trylater.der', "\x30\x03\x0a\x01\x03");

$t->start_dns($dns, 'ocsp.test' => '127.0.0.1', 'nx.test' => '127.0.0.1');
$t->start_fault_responder($faults);
# The responder of the "refused" case, stopped to refuse connections.
$t->start_fault_responder($refusing, 'refusing');

# Each server's responder URL stays the same throughout: a server's
# staple belongs to its responder (another URL is another staple).
my %url = (
	refused => "http://127.0.0.1:8082/refused/",
	nxdomain => "http://nx.test:$faults/nxdomain/",
);

sub config {
	my $servers = '';
	for my $case (@cases) {
		my $url = $url{$case} // "http://127.0.0.1:8081/$case/";
		my $verify = $case eq 'untrusted'
			? "ssl_stapling_verify on;\n        ssl_trusted_certificate root.crt;" : '';
		$servers .= <<"EOF";
    server {
        listen 127.0.0.1:$port{$case} ssl;
        ssl_certificate $case.chain.crt;
        ssl_certificate_key $case.key;
        ssl_stapling_responder $url;
        $verify
    }
EOF
	}
	$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
ssl_stapling_refresh 2s;
ssl_stapling_fetch_timeout 2s;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    resolver 127.0.0.1:%%PORT_8980_UDP%% ipv6=off;
    ssl_stapling on;
$servers}
EOF
}

config();
$t->run(workers => 2);

for my $case (@cases) {
	my $ok = wait_for(sub {
		($t->handshake(port($port{$case}))->{staple} // '')
			eq $t->read_file("$case.good.der");
	}, 10, "$case stapled");
	ok($ok, "$case: first stapled from a good answer");
}

# Turn every responder bad: a mode, a stopped responder, a forgotten name.
my %mode = (
	http500 => '500', http404 => '404', garbage => 'garbage',
	truncated => 'truncated', huge => 'huge', other => 'file:other.der',
	untrusted => 'file:untrusted-rogue.der', expired => 'file:expired.der',
	future => 'file:future.der', trylater => 'file:trylater.der',
	unknown => 'file:unknown-status.der',
	hang => 'hang',
);
$t->write_file("$_.mode", $mode{$_}) for keys %mode;
$t->stop_daemon('refusing');
$t->forget_name('nx.test');
# The old workers exit with a fetch hanging in flight: wait until the hang
# responder holds a request, then reload. Had the old worker waited for
# that fetch, it would log its timeout (ssl_stapling_fetch_timeout 2s).
sub hang_requests { scalar(() = $t->read_file('hang.count') =~ /^1$/mg) }
my $before = hang_requests();
ok(wait_for(sub { hang_requests() > $before }, 15, 'a hanging fetch'),
	'a fetch hangs on the hang responder');
my @old = $t->workers;
my $took = $t->reload(timeout => 30);
ok(defined $took, 'reloaded; the old workers exited')
	or diag('took ' . ($took // 'forever'));
diag(sprintf 'old workers gone %.2f s after the reload', $took) if defined $took;
my $old = join '|', @old;
unlike($t->read_file('error.log'), qr{^\S+ \S+ \[\w+\] (?:$old)#\d+: [^\n]*cannot fetch OCSP response for certificate "[^"]*/hang\.chain\.crt"}m,
	'the old workers did not wait for the hanging fetch (no timeout of theirs for it)');

for my $case (@cases) {
	my $line = qr/\[warn\] .*ssl_stapling: cannot fetch OCSP response for certificate "[^"]*\/\Q$case\E\.chain\.crt" from \S+: (?:.*?)$cause{$case}.*; retry in \d+ s; the previous staple is served until its nextUpdate/;
	ok(wait_for(sub { $t->read_file('error.log') =~ $line }, 15, "$case failure"),
		"$case: log line names the certificate and the cause");
	# 403: the root is the test directory, which has no index.html.
	my $r = $t->handshake(port($port{$case}), request => "GET / HTTP/1.0\r\n\r\n");
	ok($r->{ok} && ($r->{response} // '') =~ m{^HTTP/1.1 403}, "$case: TLS and HTTP still served");
	is($r->{staple}, $t->read_file("$case.good.der"),
		"$case: the previous good staple is still served, no bad one");
}

