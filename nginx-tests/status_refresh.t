#!/usr/bin/perl

# Refresh on demand: a status location with "ssl_stapling_status refresh;"
# takes POST ?refresh=<id> (a staple id or a certificate's SHA-256, as the
# status page shows them) or ?refresh=all: the staples are fetched at once,
# one request each, and the answer is 202 with the ids queued. An unknown
# id is 404; a GET never fetches; a plain status location refuses POST.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;
use JSON::PP;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(20);
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert($_, ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for qw(one two);
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
# Refreshes back to back: none skipped as too recent (status_refresh_limit.t
# tests the limit).
ssl_stapling_refresh_min_interval 0;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    server {
        listen 127.0.0.1:8082 ssl;
        ssl_certificate one.chain.crt;
        ssl_certificate_key one.key;
    }
    server {
        listen 127.0.0.1:8083 ssl;
        ssl_certificate two.chain.crt;
        ssl_certificate_key two.key;
    }
    server {
        listen 127.0.0.1:8081;
        location = /status { ssl_stapling_status; }
        location = /admin/status {
            allow 127.0.0.1;
            deny all;
            ssl_stapling_status refresh;
        }
    }
}
EOF
$t->run(workers => 2);
my $port = port(8081);

# The page's entry for certificate $name.
my $entry = sub {
	my ($name) = @_;
	my $page = $t->status_page($port) or return undef;
	my ($c) = grep { ($_->{servers}[0] // '') eq $name || ($_->{subject} // '') eq "CN=$name" }
		@{$page->{certificates}};
	return $c;
};
ok(wait_for(sub { ($entry->('one') // {})->{fetches}{ok} && ($entry->('two') // {})->{fetches}{ok} }, 10),
	'both staples fetched');
my $one = $entry->('one');
is($t->ocsp_requests, 2, 'one request each');

my ($status, undef, $body) = $t->http_request($port, '/status?refresh=all', method => 'POST');
is($status, 405, 'a plain status location refuses POST');
($status) = $t->http_request($port, '/admin/status?refresh=all');
is($status, 200, 'a GET with refresh= is the page');
($status, undef, $body) = $t->http_request($port, '/admin/status?refresh=' . ('ab' x 32), method => 'POST');
is($status, 404, 'an unknown id: 404');
($status, undef, $body) = $t->http_request($port, '/admin/status', method => 'POST');
is($status, 400, 'POST without refresh=: 400');
is($t->ocsp_requests, 2, 'none of these fetched');

# By the certificate's SHA-256: its one staple.
($status, undef, $body) = $t->http_request($port, "/admin/status?refresh=$one->{sha256}", method => 'POST');
is($status, 202, 'refresh by certificate SHA-256: 202');
is_deeply(eval { decode_json($body)->{queued} }, [$one->{id}], 'the answer lists its staple id');
ok(wait_for(sub { ($entry->('one') // {})->{fetches}{ok} == 2 }, 10), 'fetched again');
is($t->ocsp_requests, 3, 'with one request');
cmp_ok($entry->('one')->{last_fetch}{time}, 'ge', $one->{last_fetch}{time}, 'last_fetch moved on');
is($entry->('two')->{fetches}{ok}, 1, 'the other staple was not fetched');

# All: both, one request each.
($status, undef, $body) = $t->http_request($port, '/admin/status?refresh=all', method => 'POST');
is($status, 202, 'refresh=all: 202');
my $queued = eval { decode_json($body)->{queued} } // [];
is(scalar @$queued, 2, 'both staples queued');
ok(wait_for(sub { ($entry->('two') // {})->{fetches}{ok} == 2 && $entry->('one')->{fetches}{ok} == 3 }, 10),
	'both fetched again');
is($t->ocsp_requests, 5, 'one request each');

# By staple id.
($status, undef, $body) = $t->http_request($port, "/admin/status?refresh=$one->{id}", method => 'POST');
is($status, 202, 'refresh by staple id: 202');
ok(wait_for(sub { $entry->('one')->{fetches}{ok} == 4 }, 10), 'fetched again');
is($t->ocsp_requests, 6, 'one more request, and none from the GETs of the page');

