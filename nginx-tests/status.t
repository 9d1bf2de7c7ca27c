#!/usr/bin/perl

# ssl_stapling_status: JSON by default, Prometheus text on request; each
# field checked against what the responder served and what clients saw.

use warnings;
use strict;

use Test::More;
use JSON::PP;
use Time::Local qw(timegm);

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(85);
my $ocsp = port(8080);
my $closed = port(8081);
$t->make_ca('root');
$t->make_cert('one', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->make_cert('two', ca => 'root', ocsp => "http://127.0.0.1:$closed/");
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
        server_name one.test www.one.test;
        ssl_certificate one.chain.crt;
        ssl_certificate_key one.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8444 ssl;
        server_name two.test;
        ssl_certificate two.chain.crt;
        ssl_certificate_key two.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8445;
        location /status {
            ssl_stapling_status;
        }
    }
}
EOF
$t->run(workers => 2);

my $staple = wait_for(sub { $t->handshake(port(8443))->{staple} }, 10);
ok($staple, 'one is stapled');
ok(wait_for(sub { $t->read_file('error.log') =~ /cannot fetch OCSP response for certificate "[^"]*two\.chain\.crt"/ }, 10),
	'two failed its fetch');

sub page {
	my (%o) = @_;
	my ($status, $head, $body) = $t->http_request(port(8445), $o{path} // '/status',
		headers => $o{headers});
	return ($status, $head, $body);
}

sub json_page {
	my ($status, $head, $body) = page(path => '/status?detail=all');
	is($status, 200, 'status page answers 200');
	like($head, qr{^Content-Type: application/json}mi, 'JSON content type');
	my $j = eval { decode_json($body) };
	ok($j, 'the page is valid JSON') or diag($@, $body);
	return $j // {};
}

sub time_of {
	my ($rfc) = @_;
	my ($y, $m, $d, $H, $M, $S) = ($rfc // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/
		or return undef;
	return timegm($S, $M, $H, $d, $m - 1, $y);
}

sub staple_time {
	my ($text, $field) = @_;
	my %mon = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5,
		Jul => 6, Aug => 7, Sep => 8, Oct => 9, Nov => 10, Dec => 11);
	my ($mo, $d, $H, $M, $S, $y) = $text =~ /$field: (\w{3})\s+(\d+) (\d\d):(\d\d):(\d\d) (\d{4}) GMT/
		or return undef;
	return timegm($S, $M, $H, $d, $mon{$mo}, $y);
}

my $j = json_page();
like($j->{module_version}, qr/^\d+\.\d+\.\d+/, 'module_version');
like($j->{nginx_version}, qr/^1\.\d+\.\d+$/, 'nginx_version');
is($j->{zone}{name}, 'ssl_stapling', 'zone name');
is($j->{zone}{size}, 1048576, 'zone size');
ok($j->{zone}{used} > 0 && $j->{zone}{used} < $j->{zone}{size}, 'zone used');
is($j->{zone}{entries}, 2, 'zone entries');
is(scalar @{$j->{certificates}}, 2, 'two certificates listed');

my ($one) = grep { ($_->{subject} // '') =~ /CN=one$/ } @{$j->{certificates}};
my ($two) = grep { ($_->{subject} // '') =~ /CN=two$/ } @{$j->{certificates}};
ok($one && $two, 'each certificate by its subject');

# Without ?detail=all: the totals by state, and only the certificates that
# need attention (two, whose fetch failed); filters by state and id, pages.
sub listed {
	my (undef, undef, $body) = page(path => $_[0]);
	my $d = eval { decode_json($body) } // {};
	return ($d, join ' ', map { ($_->{subject} // '') =~ s/.*CN=//r } @{$d->{certificates} // []});
}
my ($d, $names) = listed('/status');
is($names, 'two', 'by default only the certificate that needs attention is listed');
is(join(' ', map { "$_=" . ($d->{summary}{$_} // '') } qw/ total valid invalid failing /),
	'total=2 valid=1 invalid=1 failing=1', 'the summary counts both');
is($d->{listed}{matching}, 1, 'and says how many matched');
is((listed('/status?state=valid'))[1], 'one', 'state=valid lists one');
is((listed("/status?id=$one->{id}"))[1], 'one', 'id=<staple id> lists that staple');
is((listed("/status?id=$two->{sha256}"))[1], 'two', 'id=<certificate sha256> lists its staples');
($d, $names) = listed('/status?detail=all&per_page=1&page=2');
is(scalar @{$d->{certificates} // []}, 1, 'per_page=1: one per page');
is($d->{listed}{matching}, 2, 'of two matching');
is((listed('/status?detail=all&per_page=1&page=3'))[1], '', 'past the last page: none');
(my $serial = $t->serial('one')) =~ s/^0+//;
(my $shown = uc($one->{serial} // '')) =~ s/^0+//;
is($shown, $serial, 'serial (hex) as in the certificate');
is($one->{sha256}, $t->cert_sha256('one'), 'sha256 of the certificate');
like($one->{id}, qr/^[0-9a-f]{64}$/, 'id: the staple id');
isnt($one->{id}, $one->{sha256}, 'the staple id is not the certificate hash');
is_deeply($one->{servers}, ['one.test', 'www.one.test'], 'servers: its server names');
is($one->{responder}, "http://127.0.0.1:$ocsp/", 'responder');
is($one->{source}, 'fetched', 'source fetched');
is($one->{status}, 'good', 'status good');
ok($one->{valid}, 'valid');
my $text = $t->staple_text($staple);
is(time_of($one->{this_update}), staple_time($text, 'This Update'), 'this_update as in the staple');
is(time_of($one->{next_update}), staple_time($text, 'Next Update'), 'next_update as in the staple');
my $refresh = time_of($one->{next_refresh});
ok($refresh > time && $refresh < time_of($one->{next_update}), 'next_refresh before nextUpdate');
is($one->{last_fetch}{result}, 'ok', 'last fetch ok');
is($one->{last_fetch}{error}, undef, 'no error');
ok(abs(time_of($one->{last_fetch}{time}) - time) < 60, 'last fetch time');
is($one->{fetches}{ok}, 1, 'one fetch ok');
is($one->{fetches}{failed}, 0, 'no fetch failed');
is($one->{fetches}{ok}, $t->ocsp_requests, 'as many fetches as the responder received');
is($one->{bytes}, length $staple, 'bytes: the staple size');
ok(!$one->{must_staple}, 'not must-staple');

is($two->{status}, 'none', 'two: status none');
is($two->{source}, 'none', 'two: source none');
ok(!$two->{valid}, 'two: not valid');
is($two->{last_fetch}{result}, 'failed', 'two: last fetch failed');
like($two->{last_fetch}{error}, qr/refused|connect/i, 'two: the error says why');
ok($two->{fetches}{failed} >= 1, 'two: failures counted');

# Handshake counters: exactly what clients saw, across both workers.
my ($s0, $u0) = ($one->{handshakes}{stapled}, $one->{handshakes}{unstapled});
my $n = grep { defined $t->handshake(port(8443))->{staple} } 1 .. 8;
$t->handshake(port(8443), no_status => 1);
$j = json_page();
($one) = grep { ($_->{subject} // '') =~ /CN=one$/ } @{$j->{certificates}};
is($n, 8, 'eight stapled handshakes');
is($one->{handshakes}{stapled} - $s0, 8, 'handshakes.stapled counts them (a client not asking is not counted)');
is($one->{handshakes}{unstapled}, $u0, 'handshakes.unstapled unchanged');

# Prometheus text, by argument or by Accept.
for my $how (['/status?format=prometheus', {}], ['/status', { Accept => 'text/plain' }]) {
	my ($status, $head, $body) = page(path => $how->[0], headers => $how->[1]);
	is($status, 200, "prometheus ($how->[0]) answers 200");
	like($head, qr{^Content-Type: text/plain; version=0\.0\.4}mi, 'prometheus content type');
	my @bad = grep { !/^# (HELP|TYPE) \w+ / && !/^[a-z_]+(\{[^}]*\})? (-?\d+(\.\d+)?|\+Inf)$/ } split /\n/, $body;
	is(join("\n", @bad), '', 'every line is a comment or one sample');
	# By default, totals by state, and series of their own only for the
	# certificates that need attention: two (its fetch failed), not one.
	like($body, qr/^ssl_stapling_staples\{state="total"\} 2$/m, 'two staples in all');
	like($body, qr/^ssl_stapling_staples\{state="valid"\} 1$/m, 'one valid');
	like($body, qr/^ssl_stapling_staples\{state="failing"\} 1$/m, 'one failing');
	like($body, qr/^ssl_stapling_all_fetches_total\{result="ok"\} 1$/m, 'fetches of all staples');
	like($body, qr/^# TYPE ssl_stapling_all_fetches_total counter$/m, 'a counter');
	like($body, qr/^ssl_stapling_soonest_next_update_seconds \d+$/m, 'the soonest nextUpdate');
	my ($sha_one, $sha_two) = map { substr($t->cert_sha256($_), 0, 16) } qw/ one two /;
	unlike($body, qr/sha256="$sha_one"/, 'no series of its own for the healthy one');
	like($body, qr/^ssl_stapling_fetch_failures\{sha256="$sha_two"[^}]*\} [1-9]\d*$/m,
		'the failing one has its series');
}

# ?detail=all: every certificate's series.
{
	my ($status, $head, $body) = page(path => '/status?format=prometheus&detail=all', headers => {});
	is($status, 200, 'prometheus with detail=all answers 200');
	like($body, qr/^# TYPE ssl_stapling_staple_valid_seconds gauge$/m, 'valid seconds is a gauge');
	like($body, qr/^# TYPE ssl_stapling_fetches_total counter$/m, 'fetches is a counter');
	my $sha = substr($t->cert_sha256('one'), 0, 16);
	my ($valid) = $body =~ /^ssl_stapling_staple_valid_seconds\{sha256="$sha"[^}]*\} (\d+)$/m;
	my $left = time_of($one->{next_update}) - time;
	ok(defined $valid && abs($valid - $left) < 30, 'valid seconds of one match its nextUpdate')
		or diag("valid $valid left $left");
	like($body, qr/^ssl_stapling_fetches_total\{sha256="$sha"[^}]*,result="ok"\} 1$/m, 'fetch counter of one');
	like($body, qr/^ssl_stapling_staple_valid\{sha256="$sha"[^}]*\} 1$/m, 'one is valid');
	like($body, qr/^ssl_stapling_zone_entries\{zone="ssl_stapling"\} 2$/m, 'zone entries');
}

my ($status) = page(headers => {}, path => '/status?format=json');
is($status, 200, 'format=json');
my ($post) = $t->http_request(port(8445), '/status', method => 'POST');
is($post, 405, 'the page is read-only: POST is refused');

