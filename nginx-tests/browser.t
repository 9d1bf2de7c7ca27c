#!/usr/bin/perl

# The first visitor of a must-staple site, in a real browser: Firefox ESR,
# headless, driven through Marionette (lib/firefox.py, Mozilla's
# marionette-driver), a throwaway profile trusting a throwaway CA, a
# certificate with the TLS Feature extension (RFC 7633). Firefox enforces
# must-staple and is told not to ask responders itself, so only the staple
# counts. Each case starts a fresh Firefox with a fresh profile, then
# nginx, then loads the page at once:
#
#   nginx's built-in stapling, first load     MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING (the anchor)
#   the module, 1 worker, first load          the page
#   the module, 4 workers, first load         the page
#   the module, after nginx -s reload         the page
#   the module, restart from the store,
#     responder down                          the page
#   the module, responder down, no store      the error (the control)
#
# and the HTML status page, opened in Firefox, names each certificate and
# its state. Screenshots of every load are taken in the test's directory
# (TEST_NGINX_LEAVE=1 keeps it); when a check fails they are copied to
# target/browser-test/ (TEST_NGINX_BROWSER_SHOTS names another place),
# which the failure says.

use warnings;
use strict;

use Test::More;
use File::Basename qw/ dirname /;
use File::Spec;
use IPC::Open2;
use JSON::PP;

use Test::Nginx;
use Test::Nginx::Stapling;

my $lib = File::Spec->rel2abs(dirname(__FILE__) . '/lib');
my $python = $ENV{TEST_NGINX_BROWSER_PYTHON}
	// File::Spec->rel2abs(dirname(__FILE__) . '/../target/browser-venv/bin/python');
my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl/)->has_daemon('openssl');
my $have = sub { my ($bin) = @_; grep { -x "$_/$bin" } split /:/, $ENV{PATH} };
plan(skip_all => 'TEST_NGINX_BROWSER=0 (scripts/test runs the browser test against one nginx)')
	if ($ENV{TEST_NGINX_BROWSER} // '') eq '0';
plan(skip_all => "no firefox-esr and certutil (Debian's firefox-esr and libnss3-tools)")
	unless $have->('firefox-esr') && $have->('certutil');
plan(skip_all => "no Python with marionette-driver at $python (scripts/install-deps makes "
	. "target/browser-venv; or set TEST_NGINX_BROWSER_PYTHON)")
	unless -x $python && system("$python -c 'import marionette_driver' 2>/dev/null") == 0;
$t->plan(13);

my $dir = $t->testdir;
my $ocsp = port(8080);
my $https = port(8443);
$t->make_ca('root');
$t->make_cert('site.test', ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/",
	must_staple => 1);
$t->make_cert('other.test', ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/");

my $conf = sub {
	my (%o) = @_;
	my $store = $o{store} ? "    ssl_stapling_store $dir/store;\n" : '';
	# nginx's own stapling has no status page.
	my $status = $o{builtin} ? '' : 'location = /status { ssl_stapling_status; }';
	return <<"EOF";
%%TEST_GLOBALS%%

daemon off;

worker_processes $o{workers};
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
$store
    server {
        listen 127.0.0.1:8443 ssl;
        server_name site.test;
        ssl_certificate site.test.chain.crt;
        ssl_certificate_key site.test.key;
        location / {
            default_type text/html;
            return 200 "<!DOCTYPE html><html><head><title>stapled site</title></head><body>hello from site.test</body></html>";
        }
        $status
    }
    server {
        listen 127.0.0.1:8443 ssl;
        server_name other.test;
        ssl_certificate other.test.chain.crt;
        ssl_certificate_key other.test.key;
        return 204;
    }
}
EOF
};

# A fresh profile: the CA trusted, must-staple enforced, Firefox's own
# OCSP and CRLite off, every name resolved to 127.0.0.1, nothing phoning
# home.
my $profiles = 0;
my $profile = sub {
	my $p = "$dir/profile" . ++$profiles;
	mkdir $p or die "mkdir $p: $!\n";
	my $out = `certutil -N -d sql:$p --empty-password 2>&1 && certutil -A -n test-root -t "C,," -i $dir/root.crt -d sql:$p 2>&1`;
	die "certutil: $out\n" if $?;
	my %prefs = (
		'marionette.port' => port(8090),
		'network.dns.forceResolve' => '"127.0.0.1"',
		'security.ssl.enable_ocsp_must_staple' => 'true',
		'security.OCSP.enabled' => 0,
		'security.pki.crlite_mode' => 0,
		'security.remote_settings.crlite_filters.enabled' => 'false',
		'app.update.auto' => 'false',
		'app.update.enabled' => 'false',
		'app.normandy.enabled' => 'false',
		'datareporting.policy.dataSubmissionEnabled' => 'false',
		'datareporting.healthreport.uploadEnabled' => 'false',
		'toolkit.telemetry.enabled' => 'false',
		'browser.safebrowsing.malware.enabled' => 'false',
		'browser.safebrowsing.phishing.enabled' => 'false',
		'browser.safebrowsing.downloads.enabled' => 'false',
		'network.captive-portal-service.enabled' => 'false',
		'network.connectivity-service.enabled' => 'false',
		'browser.shell.checkDefaultBrowser' => 'false',
		'browser.startup.homepage_override.mstone' => '"ignore"',
		'extensions.update.enabled' => 'false',
		'services.settings.server' => '"http://127.0.0.1:9/"',
		'network.proxy.type' => 0,
	);
	$t->write_file("profile$profiles/user.js",
		join '', map { "user_pref(\"$_\", $prefs{$_});\n" } sort keys %prefs);
	return $p;
};

# Firefox up (a fresh one), then $before->() (nginx starts), then each
# URL loaded at once: the JSON answers. A helper left by a test that died
# is stopped (and stops its Firefox) at the end.
my @helpers;
my $shots = $ENV{TEST_NGINX_BROWSER_SHOTS}
	// File::Spec->rel2abs(dirname(__FILE__) . '/../target/browser-test');
END {
	kill 'TERM', @helpers if @helpers;
	if (!Test::More->builder->is_passing) {
		require File::Copy;
		require File::Path;
		File::Path::make_path($shots);
		File::Copy::copy($_, $shots) for glob($t->testdir . '/*.png'), $t->testdir . '/firefox.log';
		Test::More::diag("screenshots of the loads and firefox.log: $shots/");
	}
}
sub browse {
	my ($before, @urls) = @_;
	my $p = $profile->();
	my $pid = open2(my $from, my $to, $python, "$lib/firefox.py", '--stdin', $p, port(8090));
	push @helpers, $pid;
	my $ready = <$from>;
	die "firefox did not start:\n" . $t->read_file('firefox.log') unless $ready && $ready =~ /ready/;
	$before->() if $before;
	my @answers;
	for my $u (@urls) {
		print $to "$u\n";
		$to->flush;
		my $line = <$from> // '{}';
		push @answers, eval { decode_json($line) } // { error => "no answer: $line" };
	}
	close $to;
	waitpid($pid, 0);
	@helpers = grep { $_ != $pid } @helpers;
	return wantarray ? @answers : $answers[0];
}

my $site = "https://site.test:$https/";
my $page_ok = sub {
	my ($a, $what) = @_;
	my $ok = ok($a->{loaded} && ($a->{title} // '') eq 'stapled site', $what);
	diag(encode_json($a)) unless $ok;
	return $ok;
};
my $refused = sub {
	my ($a, $what) = @_;
	my $ok = is($a->{error}, 'MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING', $what);
	diag(encode_json($a)) unless $ok;
	return $ok;
};
my $started = time;

# nginx's built-in stapling: the first visitor is refused.
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
$t->without_module;
$t->write_file_expand('nginx.conf', $conf->(workers => 2, builtin => 1));
my $a = browse(sub { $t->run(workers => 2) }, "$site\@builtin-first-load");
$refused->($a, 'built-in stapling: the first load fails with MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING');
ok(!$a->{loaded}, 'built-in stapling: Firefox shows its error page, not the site');
$t->stop;

# The module, one worker, then four: the first load right after start.
$t->with_module;
for my $workers (1, 4) {
	$t->write_file_expand('nginx.conf', $conf->(workers => $workers, store => 1));
	$a = browse(sub { $t->run(workers => $workers) }, "$site\@module-$workers-workers");
	$page_ok->($a, "the module, $workers worker(s): the first load shows the page");
	$t->stop unless $workers == 4;
}

# After a reload.
$a = browse(sub { $t->reload(workers => 4) or die "reload failed\n" }, "$site\@after-reload");
$page_ok->($a, 'the module, after nginx -s reload: the first load shows the page');
$t->stop;

# A restart from the store, the responder down.
$t->stop_daemon('ocsp');
$a = browse(sub { $t->run(workers => 4) }, "$site\@restart-from-store");
$page_ok->($a, 'the module, restarted with the responder down: the page, from the store');
like($t->read_file('error.log'), qr/\d+ staple\(s\) read from the store/, 'the staple came from the store');

# The HTML status page, in Firefox.
$a = browse(undef, "${site}status?format=html&detail=all\@status-page");
ok($a->{loaded}, 'the status page loads in Firefox');
like($a->{text} // '', qr/OCSP good, must-staple\s+CN=site\.test/, 'it names the must-staple certificate and its state');
like($a->{text} // '', qr/OCSP good\s+CN=other\.test/, 'and the other certificate and its state');
like($a->{text} // '', qr/2 valid.*0 must-staple gap\(s\)/s, 'with the summary: both valid, no gap');
$t->stop;

# The control: the module, the responder down, no store: Firefox refuses.
$t->write_file_expand('nginx.conf', $conf->(workers => 2));
$a = browse(sub { $t->run(workers => 2) }, "$site\@control-no-staple");
$refused->($a, 'the control, responder down and no store: the same error');
$t->stop;

my $secs = time - $started;
diag("browser test: $profiles Firefox starts, $secs s");
cmp_ok(scalar(grep { -s } glob("$dir/*.png")), '>=', 7, 'a screenshot of each load is kept');
