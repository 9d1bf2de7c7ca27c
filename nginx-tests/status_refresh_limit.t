#!/usr/bin/perl

# Refreshes on demand are coalesced per staple: with
# "ssl_stapling_refresh_min_interval 3s", 500 POST ?refresh=all in 10 s
# send the responder at most ceil(10 s / 3 s) + 1 requests; the answers
# say which staples were queued and which were skipped, and why. The
# other tests of refreshes turn it off (0).

use warnings;
use strict;

use Test::More;
use POSIX qw/ ceil /;
use Time::HiRes qw/ time sleep /;

use Test::Nginx;
use Test::Nginx::Stapling;
use JSON::PP;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(7);
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('one', ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
ssl_stapling_refresh_min_interval 3s;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate one.chain.crt;
        ssl_certificate_key one.key;
    }
    server {
        listen 127.0.0.1:8081;
        location = /status { ssl_stapling_status refresh; }
    }
}
EOF
$t->run(workers => 2);
ok(wait_for(sub { $t->handshake(port(8443))->{staple} }, 10), 'stapled');
my $id = $t->staple_ids(port(8081), 'one');
# The fetch at start is 3 s old before the POSTs begin.
sleep 3.1;

my $before = $t->ocsp_requests;
my (%answers, $failed);
my $start = time;
for my $i (0 .. 499) {
	my $at = $start + $i * 0.02;
	sleep($at - time) if $at > time;
	my ($status, undef, $body) = $t->http_request(port(8081), '/status?refresh=all', method => 'POST');
	my $a = $status == 202 && eval { decode_json($body) };
	$failed++, next unless $a;
	if (@{$a->{queued}}) {
		$answers{queued}++ if "@{$a->{queued}}" eq $id;
	} elsif (@{$a->{skipped}}) {
		my ($s) = @{$a->{skipped}};
		$answers{$s->{reason} =~ /^(fetched \d+ s ago|being fetched)$/ ? 'skipped' : 'odd'}++
			if $s->{id} eq $id;
	}
}
my $elapsed = time - $start;
my $bound = ceil($elapsed / 3) + 1;
# The last fetch asked for ends.
wait_for(sub { my $n = $t->ocsp_requests; sleep 1; $n == $t->ocsp_requests }, 10);
my $requests = $t->ocsp_requests - $before;
diag(sprintf '500 POSTs in %.1f s: %d requests; %d queued, %d skipped', $elapsed, $requests,
	$answers{queued} // 0, $answers{skipped} // 0);
is($failed // 0, 0, 'every POST answered 202 with JSON');
cmp_ok($requests, '>=', 2, "refreshes reached the responder ($requests requests)");
cmp_ok($requests, '<=', $bound, "at most ceil(elapsed / 3 s) + 1 = $bound requests for 500 POSTs");
cmp_ok($answers{queued} // 0, '>=', $requests - 1, 'answers said the staple was queued');
cmp_ok($answers{skipped} // 0, '>=', 400, 'and the others that it was skipped, with a reason');
ok(!$answers{odd}, 'no other answer');
