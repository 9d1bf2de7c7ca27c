#!/usr/bin/perl

# The alerting rules shipped in contrib/prometheus, with Debian's
# prometheus package: `promtool check rules` and `promtool test rules`
# pass, and fail when a metric the rules use is renamed (so the unit tests
# can fail); a healthy certificate is counted in the totals and has no
# series of its own; a real Prometheus server scrapes a running nginx's
# status page, its HTTP API returns the totals with the scrape's labels,
# and, the responder stopped, SslStaplingFetchFailing fires for the
# certificate, whose series carry its labels, and every metric the rules use
# is then on the page (the rules' `for:` shortened to 1s for the test).

use warnings;
use strict;

use Test::More;
use File::Basename qw/ dirname /;
use File::Spec;
use JSON::PP;

use Test::Nginx;
use Test::Nginx::Stapling;

my $contrib = File::Spec->rel2abs(dirname(__FILE__) . '/../contrib/prometheus');
my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)->has_daemon('openssl');
plan(skip_all => "no prometheus and promtool (Debian's prometheus package)")
	unless grep { -x "$_/promtool" } split /:/, $ENV{PATH}
	and grep { -x "$_/prometheus" } split /:/, $ENV{PATH};
$t->plan(14);
my $dir = $t->testdir;

my $run = sub {
	my ($cmd) = @_;
	my $out = `$cmd 2>&1`;
	return ($? >> 8, $out);
};
my ($rc, $out) = $run->("cd $contrib && promtool check rules ssl_stapling.rules.yml");
is($rc, 0, 'promtool check rules') or diag($out);
($rc, $out) = $run->("cd $contrib && promtool test rules ssl_stapling.rules.test.yml");
is($rc, 0, 'promtool test rules: every alert fires and stays quiet as its tests say') or diag($out);

# The unit tests can fail: a metric renamed in the rules breaks them.
(my $renamed = $t->read_file("$contrib/ssl_stapling.rules.yml")) =~ s/ssl_stapling_fetch_failures/ssl_stapling_fetch_failure_count/g;
$t->write_file('ssl_stapling.rules.yml', $renamed);
$t->write_file('ssl_stapling.rules.test.yml', $t->read_file("$contrib/ssl_stapling.rules.test.yml"));
($rc, $out) = $run->("cd $dir && promtool test rules ssl_stapling.rules.test.yml");
isnt($rc, 0, 'promtool test rules fails with a metric renamed');

my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('site', ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/", must_staple => 1);
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
ssl_stapling_refresh 3s;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
    }
    server {
        listen 127.0.0.1:8081;
        location = /status { ssl_stapling_status; }
    }
}
EOF
$t->run(workers => 2);
ok(wait_for(sub { $t->handshake(port(8443))->{staple} }, 10), 'stapled');

# A healthy certificate: the totals count it, it has no series of its own
# (the page's size does not grow with healthy certificates).
my (undef, undef, $page) = $t->http_request(port(8081), '/status?format=prometheus');
like($page, qr/^ssl_stapling_staples\{state="valid"\} 1$/m, 'the totals count the valid staple');
unlike($page, qr/subject="CN=site"/, 'a healthy certificate has no series of its own');
my @used = do { my %u; grep { !$u{$_}++ } join('', grep { /^\s*expr:/ } split /^/, $t->read_file("$contrib/ssl_stapling.rules.yml")) =~ /\b(ssl_stapling_\w+)/g };
cmp_ok(scalar @used, '>=', 5, 'the rules use the module\'s metrics (' . join(', ', @used) . ')');

# A real Prometheus scrapes it, with the rules (for: shortened).
(my $rules = $t->read_file("$contrib/ssl_stapling.rules.yml")) =~ s/^(\s*for:) \S+/$1 1s/mg;
$t->write_file('live.rules.yml', $rules);
my $prom = port(8070);
my $nginx_status = port(8081);
$t->write_file('prometheus.yml', <<"EOF");
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $dir/live.rules.yml
scrape_configs:
  - job_name: nginx
    metrics_path: /status
    params:
      format: [prometheus]
    static_configs:
      - targets: ['127.0.0.1:$nginx_status']
EOF
$t->start_daemon('prometheus', qr/Server is ready to receive web requests/, 'prometheus',
	"--config.file=$dir/prometheus.yml", "--storage.tsdb.path=$dir/prometheus-data",
	"--web.listen-address=127.0.0.1:$prom");
my $api = sub {
	my ($path) = @_;
	my ($status, undef, $body) = $t->http_request($prom, $path);
	return $status == 200 ? eval { decode_json($body)->{data} } : undef;
};
my $series;
ok(wait_for(sub {
	my $d = $api->('/api/v1/query?query=ssl_stapling_staples') or return 0;
	($series) = grep { ($_->{metric}{state} // '') eq 'valid' } @{$d->{result}};
	$series && $series->{value}[1] eq '1';
}, 30), 'Prometheus has ssl_stapling_staples{state="valid"} 1');
my $m = $series ? $series->{metric} : {};
is(join(' ', map { "$_=" . ($m->{$_} // '') } qw/ job instance /), "job=nginx instance=127.0.0.1:$nginx_status",
	'with the scrape\'s labels');
my $firing = sub {
	my ($name) = @_;
	my $d = $api->('/api/v1/alerts') or return ();
	return grep { $_->{labels}{alertname} eq $name && $_->{state} eq 'firing' } @{$d->{alerts}};
};
ok(!$firing->('SslStaplingFetchFailing'), 'no fetch alert while the responder answers');

# The responder stops: fetches fail, the alert fires for the certificate.
$t->stop_daemon('ocsp');
my @alert;
ok(wait_for(sub { @alert = $firing->('SslStaplingFetchFailing'); @alert }, 60),
	'responder stopped: SslStaplingFetchFailing fires');
like($alert[0]{annotations}{summary} // '', qr/^OCSP fetches for CN=site have failed \d+ time\(s\) in a row on 127\.0\.0\.1:\d+$/,
	'its summary names the certificate');
is(scalar(grep { length($alert[0]{labels}{$_} // '') } qw/ sha256 staple serial subject /), 4,
	'the failing certificate\'s series carry the module\'s labels: sha256, staple, serial, subject');

# Now it needs attention: every metric an alert uses is on the default page.
(undef, undef, $page) = $t->http_request(port(8081), '/status?format=prometheus');
my %on_page = map { $_ => 1 } $page =~ /^(ssl_stapling_\w+)[{ ]/mg;
is(join(', ', grep { !$on_page{$_} } @used), '', 'every metric the rules use is on the page');
