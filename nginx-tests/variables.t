#!/usr/bin/perl

# Certificates loaded by variables (ssl_certificate $ssl_server_name...):
# nginx's own stapling staples none of them. The module registers each
# when a handshake first uses it, fetches its staple, and staples it from
# the next handshake on; at most ssl_stapling_dynamic_max of them are kept,
# the least recently used evicted. Each is registered with its server's
# settings: the same certificate loaded in a server with another
# ssl_stapling_responder gets that responder's staple, not the first one's.

use warnings;
use strict;

use Test::More;
use JSON::PP;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(26);
my $ocsp = port(8080);
my $ocsp_b = port(8081);
$t->make_ca('root');
my @names = qw(a.test b.test c.test);
$t->make_cert($_, ca => 'root', ocsp => "http://127.0.0.1:$ocsp/") for @names;
# Workers load these per handshake, as the worker user.
chmod 0644, map { $t->testdir . "/$_.key" } @names;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
# Another responder for the same CA, told apart by its responses' validity.
$t->start_ocsp_responder(name => 'ocsp_b', ca => 'root', port => $ocsp_b, nmin => 30);

sub config {
	my ($max) = @_;
	$max = defined $max ? "ssl_stapling_dynamic_max $max;" : '';
	$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
$max
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate \$ssl_server_name.chain.crt;
        ssl_certificate_key \$ssl_server_name.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8445 ssl;
        ssl_certificate \$ssl_server_name.chain.crt;
        ssl_certificate_key \$ssl_server_name.key;
        ssl_stapling on;
        ssl_stapling_responder http://127.0.0.1:8081/;
    }
    server {
        listen 127.0.0.1:8444;
        location / { ssl_stapling_status; }
    }
}
EOF
}

sub page {
	my (undef, undef, $body) = $t->http_request(port(8444), '/?detail=all');
	return eval { decode_json($body) } // {};
}

config();
$t->run(workers => 2);

my $i = 0;
for my $name (@names) {
	$i++;
	my $first = $t->handshake(port(8443), sni => $name);
	ok($first->{ok}, "$name: first handshake");
	# Stored in the zone (what the next handshake needs), not only asked for.
	ok(wait_for(sub {
		$i == grep { $_->{loaded_by_variables} && ($_->{status} // '') eq 'good' }
			@{page()->{certificates} // []};
	}, 10), "$name: its staple is fetched after the first handshake");
	my $second = $t->handshake(port(8443), sni => $name);
	ok($second->{staple}, "$name: the second handshake is stapled");
	my @serials = $t->staple_serials($second->{staple});
	is_deeply(\@serials, [$t->serial($name)], "$name: the staple is for its certificate");
}
my $stapled = grep { defined $t->handshake(port(8443), sni => $_)->{staple} } (@names) x 3;
is($stapled, 9, 'every later handshake stapled, whichever worker takes it');
is($t->ocsp_requests, 3, 'one request per certificate, not per worker');
like($t->read_file('error.log'), qr/certificate "CN=a\.test" loaded by variables is stapled from now on/,
	'registration is logged');
my $j = page();
is($j->{zone}{dynamic_entries}, 3, 'status page: three certificates loaded by variables');
is(scalar(grep { $_->{loaded_by_variables} && $_->{status} eq 'good' } @{$j->{certificates}}), 3,
	'status page lists them with their staples');

# At most 2 kept: the zone never holds more, nothing crashes.
config(2);
ok(defined $t->reload, 'reloaded with ssl_stapling_dynamic_max 2');
my $max_seen = 0;
for my $round (1 .. 4) {
	for my $name (@names) {
		$t->handshake(port(8443), sni => $name);
		my $n = page()->{zone}{dynamic_entries} // 99;
		$max_seen = $n if $n > $max_seen;
	}
}
is($max_seen, 2, 'the zone never holds more than 2 such entries');
ok($t->handshake(port(8443), sni => 'a.test')->{ok}, 'nginx still serves');

# The same certificate loaded by variables in a server with another
# responder: its own entry, fetched from that responder.
config();
ok(defined $t->reload, 'reloaded without a limit');
sub stapled_on {
	my ($port) = @_;
	return wait_for(sub {
		my $r = $t->handshake(port($port), sni => 'a.test');
		return $r->{staple};
	}, 10);
}
my $via_b = stapled_on(8445);
ok($via_b, 'a.test in the server with ssl_stapling_responder: stapled');
my $via_aia = stapled_on(8443);
ok($via_aia, 'a.test in the first server: stapled');
isnt($t->staple_validity($via_b), $t->staple_validity($via_aia), 'each server its own responder\'s staple');
is_deeply([$t->staple_serials($via_b)], [$t->serial('a.test')], 'the other responder\'s staple is for a.test');
is($t->ocsp_requests('ocsp_b'), 1, 'the other responder: one request, for that server only');

