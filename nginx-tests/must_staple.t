#!/usr/bin/perl

# Must-staple certificates (TLS Feature status_request, RFC 7633): a
# warning at startup when stapling is off for one; while one is served
# without a staple, an error at most once a minute (all workers together:
# once in a burst, once more a minute later) and the gap on the status page.

use warnings;
use strict;

use Test::More;
use JSON::PP;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(15);
my $closed = port(8080);
my $ocsp = port(8081);
$t->make_ca('root');
$t->make_cert('ms', ca => 'root', ocsp => "http://127.0.0.1:$closed/", must_staple => 1);
$t->make_cert('off', ca => 'root', ocsp => "http://127.0.0.1:$closed/", must_staple => 1);
$t->make_cert('fine', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/", must_staple => 1);
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate ms.chain.crt;
        ssl_certificate_key ms.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8444 ssl;
        ssl_certificate off.chain.crt;
        ssl_certificate_key off.key;
    }
    server {
        listen 127.0.0.1:8445 ssl;
        ssl_certificate fine.chain.crt;
        ssl_certificate_key fine.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8446;
        location / { ssl_stapling_status; }
    }
}
EOF
$t->run(workers => 2);

my $log = $t->read_file('error.log');
like($log, qr/\[warn\] .*certificate "[^"]*off\.chain\.crt" is must-staple \(TLS Feature status_request, RFC 7633\) but "ssl_stapling" is off in its server/,
	'stapling off for a must-staple certificate: warning at startup');
unlike($log, qr/"[^"]*(ms|fine)\.chain\.crt" is must-staple/, 'no such warning where stapling is on');

ok(wait_for(sub { $t->read_file('error.log') =~ /cannot fetch OCSP response for certificate "[^"]*ms\.chain\.crt"/ }, 10),
	'the must-staple certificate cannot be fetched for');
# No handshake to it before its staple is in: one made earlier would be a
# (true) gap, and the test below says there is none.
ok(wait_for(sub { $t->read_file('error.log') =~ /OCSP response for certificate "[^"]*fine\.chain\.crt" fetched/ }, 10),
	'the must-staple certificate with a responder is fetched for');
ok($t->handshake(port(8445))->{staple}, 'a must-staple certificate with a responder is stapled');

# Handshakes to the must-staple server that completed (all ask for a
# staple): the status page must count each. None may fail.
my ($total, @failed) = (0);
sub hs {
	my $r = $t->handshake(port(8443));
	$r->{ok} ? $total++ : push @failed, $r->{error};
	return $r;
}

# Many handshakes, spread over both workers: a count, not a duration (on a
# loaded machine a few seconds may hold only a handful). The deadline only
# keeps a broken server from hanging the test.
my $n = 0;
my $deadline = time + 120;
while ($n < 30 && time < $deadline) {
	my $r = hs();
	$n++ if $r->{ok} && !$r->{staple};
}
is($n, 30, '30 handshakes without a staple');
my @gaps = $t->read_file('error.log') =~ /\[error\] [^\n]*must-staple certificate "[^"]*ms\.chain\.crt" served without a staple \(last fetch: [^\n]*Connection refused\)\); clients that honour must-staple refuse the connection/g;
is(scalar @gaps, 1, 'the gap is logged once (at most once a minute, whatever the workers)');
unlike($t->read_file('error.log'), qr/must-staple certificate "[^"]*fine\.chain\.crt" served without/, 'not for the stapled one');

# A minute later, the gap is logged again (once).
my $gap_re = qr/\[error\] [^\n]*must-staple certificate "[^"]*ms\.chain\.crt" served without a staple/;
# One handshake a second (a light load beside the other tests), up to 75 s.
my $again;
for (1 .. 75) {
	hs();
	my @g = $t->read_file('error.log') =~ /$gap_re/g;
	last if $again = @g >= 2;
	sleep 1;
}
ok($again, 'logged again after a minute');
my @all = $t->read_file('error.log') =~ /$gap_re/g;
is(scalar @all, 2, 'twice in total, not once per handshake or per worker');
hs() for 1 .. 5;
@all = $t->read_file('error.log') =~ /$gap_re/g;
is(scalar @all, 2, 'not again right after');

my (undef, undef, $body) = $t->http_request(port(8446), '/?detail=all');
my $j = decode_json($body);
my ($ms) = grep { ($_->{subject} // '') =~ /CN=ms$/ } @{$j->{certificates}};
my ($fine) = grep { ($_->{subject} // '') =~ /CN=fine$/ } @{$j->{certificates}};
ok($ms->{must_staple} && $ms->{gap}, 'status page: must_staple and the gap');
ok($fine->{must_staple} && !$fine->{gap}, 'status page: must_staple without a gap');
is(join('; ', @failed), '', 'no handshake failed');
is($ms->{handshakes}{unstapled}, $total, "all $total handshakes without a staple counted");

