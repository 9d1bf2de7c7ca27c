#!/usr/bin/perl

# The Apache guide's two knobs, nginx style. ssl_stapling_max_age: a
# response whose thisUpdate is older is refused (a responder serving stale
# pre-signed answers is noticed), the log says how old it is, and the
# previous staple is kept. ssl_stapling_time_skew: how far in the future a
# thisUpdate may be (nginx's fixed value, 5m, by default).

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(9);
my $faults = port(8080);
$t->make_ca('root');
$t->make_cert($_, ca => 'root', type => 'ec') for qw(aged ahead far);
$t->ocsp_response('aged.fresh.der', ca => 'root', certs => ['aged']);
$t->ocsp_response('aged.old.der', ca => 'root', certs => ['aged'], shift => '-2h', ndays => 2);
$t->ocsp_response('ahead.good.der', ca => 'root', certs => ['ahead'], shift => '+10m');
$t->ocsp_response('far.good.der', ca => 'root', certs => ['far'], shift => '+20m');
$t->write_file('aged.mode', 'file:aged.fresh.der');
$t->write_file("$_.mode", 'good') for qw(ahead far);
$t->start_fault_responder($faults);

$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
ssl_stapling_max_age 1h;
ssl_stapling_time_skew 15m;
ssl_stapling_refresh 2s;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    server {
        listen 127.0.0.1:8081 ssl;
        ssl_certificate aged.chain.crt;
        ssl_certificate_key aged.key;
        ssl_stapling_responder http://127.0.0.1:8080/aged/;
    }
    server {
        listen 127.0.0.1:8082 ssl;
        ssl_certificate ahead.chain.crt;
        ssl_certificate_key ahead.key;
        ssl_stapling_responder http://127.0.0.1:8080/ahead/;
    }
    server {
        listen 127.0.0.1:8083 ssl;
        ssl_certificate far.chain.crt;
        ssl_certificate_key far.key;
        ssl_stapling_responder http://127.0.0.1:8080/far/;
    }
}
EOF
$t->run(workers => 2);

my $fresh = $t->read_file('aged.fresh.der');
ok(wait_for(sub { ($t->handshake(port(8081))->{staple} // '') eq $fresh }, 10),
	'a fresh response is stapled');

# The responder now answers with a response signed two hours ago.
my $requests = sub { my $c = $t->read_file('aged.count'); scalar(() = $c =~ /\n/g) };
my $before = $requests->();
$t->write_file('aged.mode', 'file:aged.old.der');
my $refused = qr/\[warn\] .*cannot fetch OCSP response for certificate "[^"]*\/aged\.chain\.crt" from \S+: OCSP response is (\d+) s old \(thisUpdate\), more than ssl_stapling_max_age \(3600 s\); retry in \d+ s; the previous staple is served until its nextUpdate/;
ok(wait_for(sub { $t->read_file('error.log') =~ $refused }, 15), 'the old response is refused, the log says why');
my ($age) = $t->read_file('error.log') =~ $refused;
cmp_ok($age, '>=', 7200, "its age is in the line ($age s)");
cmp_ok($requests->(), '>', $before, 'after a request to the responder');
is($t->handshake(port(8081))->{staple}, $fresh, 'the previous staple is still served');

# thisUpdate 10 minutes ahead: within the 15m skew, stapled; 20 minutes
# ahead: refused, with the offset in the line.
ok(wait_for(sub { ($t->handshake(port(8082))->{staple} // '') eq $t->read_file('ahead.good.der') }, 10),
	'thisUpdate 10 minutes ahead, skew 15m: stapled');
my $ahead = qr/cannot fetch OCSP response for certificate "[^"]*\/far\.chain\.crt" from \S+: OCSP response has a thisUpdate (\d+) s in the future/;
ok(wait_for(sub { $t->read_file('error.log') =~ $ahead }, 10), 'thisUpdate 20 minutes ahead: refused');
my ($offset) = $t->read_file('error.log') =~ $ahead;
cmp_ok($offset, '>', 15 * 60, "the log says how far ahead ($offset s)");
ok($t->unstapled(port(8083)), 'and not stapled');

