package StaplingTest;

# A small harness in the style of nginx's own test suite (Test::Nginx):
# a test directory per test, a config written per test with placeholders,
# free ports, nginx started from TEST_NGINX_BINARY and always stopped.
#
# Environment, as in nginx's suite:
#   TEST_NGINX_BINARY   nginx to run (default: build/sbin/nginx)
#   TEST_NGINX_MODULE   the module .so (default: build/modules/...)
#   TEST_NGINX_LEAVE    keep the test directory
#   TEST_NGINX_VERBOSE  print commands and their output
#   TEST_NGINX_GLOBALS  extra main-context directives
#   TEST_NGINX_CATLOG   print the error log when the test ends
#   TEST_NGINX_STREAM_MODULE  a dynamic stream module (Debian's
#                       ngx_stream_module.so) every config loads

use strict;
use warnings;

use Exporter ();
use File::Temp qw(tempdir);
use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::INET;
use IO::Socket::SSL qw(SSL_VERIFY_NONE SSL_OCSP_TRY_STAPLE SSL_OCSP_NO_STAPLE);
use Net::SSLeay;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

our @EXPORT = qw(wait_for);
our @EXPORT_OK = qw(wait_for);

# `use StaplingTest;` gives a test strict, warnings, Test::More's
# functions and wait_for: a test starts with `use FindBin; use lib ...;
# use StaplingTest;` and ends with `$t->done;`.
sub import {
	my ($class, @args) = @_;
	my $caller = caller;
	strict->import;
	warnings->import;
	Exporter::export('Test::More', $caller, @Test::More::EXPORT);
	Exporter::export($class, $caller, @args ? @args : @EXPORT);
}

my $ROOT = File::Spec->rel2abs(dirname(__FILE__) . '/../..');
# Every deadline is multiplied by this (scripts/memcheck runs nginx under
# valgrind, 20-50 times slower): deadlines are generous, never assertions.
my $SLOW = $ENV{STAPLING_TEST_SLOW} || 1;
my @ALL;

sub new {
	my ($class, %opts) = @_;
	my $d = tempdir('stapling-test-XXXXXX', TMPDIR => 1,
		CLEANUP => !$ENV{TEST_NGINX_LEAVE});
	chmod 0755, $d;
	mkdir "$d/logs";
	my $self = bless {
		dir => $d,
		ports => {},
		used_ports => {},
		binary => $ENV{TEST_NGINX_BINARY} // "$ROOT/build/sbin/nginx",
		module => $ENV{TEST_NGINX_MODULE}
			// "$ROOT/build/modules/ngx_ssl_stapling_module.so",
		expected => [],
		owner => $$,
		%opts,
	}, $class;
	die "no nginx binary at $self->{binary}; run scripts/build\n"
		unless -x $self->{binary};
	diag("test directory: $d") if $ENV{TEST_NGINX_LEAVE};
	push @ALL, $self;
	return $self;
}

sub testdir { $_[0]{dir} }

# The nginx under test's version as a number: 1.22.1 is 1022001.
sub nginx_version {
	my ($self) = @_;
	return $self->{version} //= do {
		my $v = `$self->{binary} -v 2>&1`;
		$v =~ m{nginx/(\d+)\.(\d+)\.(\d+)} ? $1 * 1000000 + $2 * 1000 + $3 : 0;
	};
}

# Stream servers have ssl_stapling since nginx 1.27.2.
sub stream_stapling { $_[0]->nginx_version >= 1027002 }
sub module { $_[0]{module} }

# The module built with test hooks (scripts/build test-hooks) for the
# nginx under test: TEST_NGINX_HOOKS_MODULE, else the one matching the
# vendored nginx (build/sbin/nginx). A test that needs it skips without it.
sub hooks_module_or_skip {
	my $hooks = $ENV{TEST_NGINX_HOOKS_MODULE}
		// ($ENV{TEST_NGINX_BINARY} ? undef
			: "$ROOT/build/test-hooks/modules/ngx_ssl_stapling_module.so");
	Test::More::plan(skip_all => 'needs the module built with test hooks for this nginx '
		. '(scripts/build test-hooks; TEST_NGINX_HOOKS_MODULE)')
		unless defined $hooks && -f $hooks;
	return $hooks;
}
sub verbose { $ENV{TEST_NGINX_VERBOSE} }

# A free TCP port on 127.0.0.1, the same one for the same $n in this test.
# Its socket stays bound (so that no other test running beside this one
# is given it) until nginx or a helper daemon is about to bind it
# (release_ports).
sub port {
	my ($self, $n) = @_;
	return $self->{ports}{$n} //= do {
		my $port;
		for (1 .. 100) {
			my $s = IO::Socket::INET->new(Listen => 1,
				LocalAddr => '127.0.0.1:0', ReuseAddr => 0) or next;
			$port = $s->sockport;
			if ($self->{used_ports}{$port}++) {
				close $s;
				undef $port;
				next;
			}
			$self->{held}{$port} = $s;
			last;
		}
		$port // die "no free port\n";
	};
}

# Closes the sockets that hold this test's ports: right before something
# binds them.
sub release_ports {
	my ($self) = @_;
	close $_ for values %{$self->{held} // {}};
	$self->{held} = {};
}

sub write_file {
	my ($self, $name, $content) = @_;
	my $path = "$self->{dir}/$name";
	open my $fh, '>', $path or die "cannot write $path: $!\n";
	binmode $fh;
	print $fh $content;
	close $fh;
	return $path;
}

sub read_file {
	my ($self, $name) = @_;
	my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
	open my $fh, '<', $path or return '';
	binmode $fh;
	local $/;
	my $c = <$fh>;
	return $c // '';
}

# The config is the test's text with %%TESTDIR%% and %%PORT_<n>%%
# replaced, and %%CERT <name>%% made the server's certificate pair
# (ssl_certificate <name>.chain.crt; ssl_certificate_key <name>.key;, the
# files make_cert writes), after the globals every test needs. With load_module => 0
# the module is not loaded (to compare with nginx alone).
sub write_config {
	my ($self, $body, %o) = @_;
	my $d = $self->{dir};
	my $load = ($o{load_module} // 1) ? "load_module $self->{module};\n" : '';
	my $sm = $ENV{TEST_NGINX_STREAM_MODULE};
	my $stream = ($sm && ($o{stream_module} // 1)) ? "load_module $sm;\n" : '';
	$load = $o{stream_first} ? $stream . $load : $load . $stream;
	my $level = $o{log_level} // 'info';
	my $globals = $ENV{TEST_NGINX_GLOBALS} // '';
	my $conf = <<"EOF" . $body;
$load
master_process on;
daemon on;
pid $d/nginx.pid;
error_log $d/error.log $level;
$globals
EOF
	$conf =~ s/%%CERT (\S+?)%%/ssl_certificate $1.chain.crt; ssl_certificate_key $1.key;/g;
	$conf =~ s/%%TESTDIR%%/$d/g;
	$conf =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
	$self->write_file('nginx.conf', $conf);
	return $self;
}

sub _nginx {
	my ($self, @args) = @_;
	my $d = $self->{dir};
	$self->release_ports;
	my @cmd = ($self->{binary}, '-p', "$d/", '-c', "$d/nginx.conf",
		'-e', "$d/error.log", @args);
	my $out = `@cmd 2>&1`;
	my $rc = $? >> 8;
	diag("@cmd => $rc\n$out") if verbose();
	return ($rc, $out);
}

# Starts nginx; dies unless it starts, or, with expect_failure, returns
# nginx's output (it must then not be running).
sub run {
	my ($self, %o) = @_;
	my $d = $self->{dir};
	my ($rc, $out) = $self->_nginx();
	if ($o{expect_failure}) {
		$self->{start_output} = $out;
		return $rc == 0 ? undef : $out;
	}
	die "nginx failed to start ($rc):\n$out\n" . $self->read_file('error.log')
		if $rc != 0;
	wait_for(sub { -s "$d/nginx.pid" }, 10, 'pid file')
		or die "nginx wrote no pid file\n";
	$self->{master} = $self->read_file('nginx.pid') + 0;
	my $n = $o{workers} // 1;
	wait_for(sub { $self->workers >= $n }, 10, "$n workers")
		or die "nginx started no workers\n";
	return $self;
}

sub test_config {
	my ($self) = @_;
	return $self->_nginx('-t');
}

sub master { $_[0]{master} }

# The pids of the master's live worker processes.
sub workers {
	my ($self) = @_;
	my $m = $self->{master} or return ();
	my @w;
	for my $stat (glob '/proc/[0-9]*/stat') {
		open my $fh, '<', $stat or next;
		my $line = <$fh> // next;
		my ($pid, $rest) = $line =~ /^(\d+) \(.*\) (.*)$/ or next;
		my (undef, $ppid) = split ' ', $rest;
		push @w, $pid if $ppid == $m && $rest !~ /^Z/;
	}
	return @w;
}

# Reloads (SIGHUP) and waits until a new set of workers runs and the old
# ones are gone; returns how long the old workers took to exit.
sub reload {
	my ($self, %o) = @_;
	my @old = $self->workers;
	my $start = time;
	$self->release_ports;
	kill 'HUP', $self->{master} or die "cannot signal master\n";
	my %old = map { $_ => 1 } @old;
	my $n = $o{workers} // scalar @old;
	wait_for(sub {
		my @w = $self->workers;
		return (grep { !$old{$_} } @w) >= $n && !(grep { $old{$_} } @w);
	}, $o{timeout} // 10, 'reload');
	my $took = time - $start;
	return (grep { $old{$_} } $self->workers) ? undef : $took;
}

# Whether process $pid runs: a zombie does not (in a container whose PID 1
# is the test itself, nobody reaps a daemonized nginx master).
sub running {
	my ($pid) = @_;
	return 0 unless kill 0, $pid;
	open my $fh, '<', "/proc/$pid/stat" or return 1;
	my $line = <$fh> // return 0;
	return $line !~ /^\d+ \(.*\) Z/;
}

sub stop {
	my ($self) = @_;
	my $m = delete $self->{master} or return;
	kill 'QUIT', $m;
	unless (wait_for(sub { !running($m) }, 10, 'nginx exit')) {
		kill 'KILL', $m;
		wait_for(sub { !running($m) }, 5, 'nginx kill');
	}
}

sub read_log { $_[0]->read_file('error.log') }

# Lines of the error log at crit, alert or emerg that the test did not
# declare, and workers that died on a signal.
sub expect_log {
	my ($self, $re) = @_;
	push @{$self->{expected}}, $re;
}

sub check_log {
	my ($self) = @_;
	$self->{log_checked} = 1;
	my $log = $self->read_log;
	my @bad = grep {
		my $l = $_;
		!grep { $l =~ $_ } @{$self->{expected}}
	} grep { /\[(crit|alert|emerg)\]/ } split /\n/, $log;
	is(join("\n", @bad), '', 'no unexpected crit, alert or emerg in error log');
	# A test that kills a worker on purpose declares it with expect_log.
	my @died = grep {
		my $l = $_;
		!grep { $l =~ $_ } @{$self->{expected}}
	} grep { /exited on signal/ } split /\n/, $log;
	is(join("\n", @died), '', 'no worker died on a signal');
}

# Ends a test: stops nginx, checks the error log of every harness object
# of this test that was not checked yet (check_log), and ends the plan.
sub done {
	for my $t (grep { $_->{owner} == $$ } @ALL) {
		$t->stop;
		$t->check_log unless $t->{log_checked};
	}
	done_testing();
}

# Polls $cond every 50 ms until it is true or $timeout seconds pass.
sub wait_for {
	my ($cond, $timeout, $what) = @_;
	my $end = time + $timeout * $SLOW;
	while (1) {
		my $r = $cond->();
		return $r if $r;
		if (time > $end) {
			diag("timed out waiting for $what") if $what;
			return;
		}
		sleep 0.05;
	}
}

# One full TLS handshake to 127.0.0.1:$port asking for a staple (unless
# no_status). Returns { ok, staple (DER or undef), cipher, response }.
sub handshake {
	my ($self, $port, %o) = @_;
	my $staple;
	my $s = IO::Socket::SSL->new(
		PeerAddr => "127.0.0.1:$port",
		Timeout => 10 * $SLOW,
		SSL_verify_mode => SSL_VERIFY_NONE,
		SSL_session_cache_size => 0,
		SSL_ocsp_mode => $o{no_status} ? SSL_OCSP_NO_STAPLE
			: SSL_OCSP_TRY_STAPLE,
		SSL_ocsp_staple_callback => sub {
			my (undef, $resp) = @_;
			$staple = Net::SSLeay::i2d_OCSP_RESPONSE($resp) if $resp;
		},
		($o{sni} ? (SSL_hostname => $o{sni}) : ()),
		($o{version} ? (SSL_version => $o{version}) : ()),
		($o{ciphers} ? (SSL_cipher_list => $o{ciphers}) : ()),
	) or return { ok => 0, error => "$IO::Socket::SSL::SSL_ERROR" };
	my %r = (ok => 1, staple => $staple, cipher => $s->get_cipher);
	$r{serial} = uc Net::SSLeay::P_ASN1_INTEGER_get_hex(
		Net::SSLeay::X509_get_serialNumber($s->peer_certificate));
	if (defined $o{request}) {
		print $s $o{request};
		local $/;
		$r{response} = <$s>;
	}
	close $s;
	return \%r;
}

# `openssl ocsp -resp_text` of a DER response.
sub staple_text {
	my ($self, $der) = @_;
	return '' unless defined $der;
	my $f = $self->write_file('staple-text.der', $der);
	return scalar `openssl ocsp -respin $f -resp_text -noverify 2>&1`;
}

# "thisUpdate - nextUpdate" of a DER response, as `openssl ocsp` prints
# them: tells apart the staples of two responders for one certificate.
sub staple_validity {
	my ($self, $der) = @_;
	my $text = $self->staple_text($der);
	my ($this) = $text =~ /This Update: (.+)/;
	my ($next) = $text =~ /Next Update: (.+)/;
	return ($this // '?') . ' - ' . ($next // '?');
}

# Serial numbers (upper-case hex) of the certificates a DER OCSP response
# gives a status for, as `openssl ocsp` reads them.
sub staple_serials {
	my ($self, $der) = @_;
	return () unless defined $der;
	my $f = $self->write_file('staple-check.der', $der);
	my $text = `openssl ocsp -respin $f -resp_text -noverify 2>&1`;
	my @s = $text =~ /^\s+Serial Number: ([0-9A-F]+)\s*$/mg;
	return @s;
}

# Runs a shell command in the test directory; dies when it fails.
sub run_cmd {
	my ($self, $cmd) = @_;
	my $out = `cd $self->{dir} && $cmd 2>&1`;
	die "$cmd failed:\n$out\n" if $?;
	diag("$cmd\n$out") if verbose();
	return $out;
}

sub openssl {
	my ($self, @args) = @_;
	return $self->run_cmd(join ' ', 'openssl', @args);
}

# --- a throwaway PKI -------------------------------------------------------

sub make_ca {
	my ($self, $name) = @_;
	$self->openssl("req -x509 -new -newkey rsa:2048 -nodes -days 30",
		"-subj /CN=$name -keyout $name.key -out $name.crt",
		"-addext basicConstraints=critical,CA:true",
		"-addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature");
	$self->write_file("$name.index", '');
	return $name;
}

# A leaf certificate issued by $o{ca}; type rsa or ec; with an OCSP URL in
# its AIA when $o{ocsp} is given. Writes NAME.crt, NAME.key and
# NAME.chain.crt (leaf + CA), and records it in the CA's index as valid.
sub make_cert {
	my ($self, $name, %o) = @_;
	my $ca = $o{ca} or die "make_cert: no ca\n";
	my $key = ($o{type} // 'rsa') eq 'ec'
		? '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1'
		: '-newkey rsa:2048';
	$self->openssl("req -new $key -nodes -subj /CN=$name",
		"-keyout $name.key -out $name.csr");
	my $ext = "subjectAltName=DNS:$name\n";
	# ocsp => URL, or [URL, URL, ...] for several OCSP URLs in its AIA.
	my @ocsp = ref $o{ocsp} ? @{$o{ocsp}} : $o{ocsp} ? ($o{ocsp}) : ();
	$ext .= 'authorityInfoAccess=' . join(',', map { "OCSP;URI:$_" } @ocsp) . "\n" if @ocsp;
	$ext .= "1.3.6.1.5.5.7.1.24=DER:30:03:02:01:05\n" if $o{must_staple};
	$ext .= "$o{ext}\n" if $o{ext};
	$self->write_file("$name.ext", $ext);
	$self->openssl("x509 -req -in $name.csr -CA $ca.crt -CAkey $ca.key",
		"-CAcreateserial -days 10 -out $name.crt -extfile $name.ext");
	$self->write_file("$name.chain.crt",
		$self->read_file("$name.crt") . $self->read_file("$ca.crt"));
	$self->set_status($name, ca => $ca, status => 'good');
	return $name;
}

sub serial {
	my ($self, $name) = @_;
	my $out = $self->openssl("x509 -in $name.crt -noout -serial");
	$out =~ /serial=([0-9A-F]+)/ or die "no serial for $name\n";
	return $1;
}

# Hex SHA-256 of a certificate's DER: its "sha256" on the status page.
sub cert_sha256 {
	my ($self, $name) = @_;
	my $der = `openssl x509 -in $self->{dir}/$name.crt -outform DER`;
	die "cannot read $name.crt\n" if $? || !length $der;
	require Digest::SHA;
	return Digest::SHA::sha256_hex($der);
}

# The JSON status page at 127.0.0.1:$port/status, decoded; undef unless it
# answers 200 with valid JSON.
sub status_page {
	my ($self, $port) = @_;
	my ($status, undef, $body) = $self->http_request($port, '/status');
	return undef unless $status == 200;
	require JSON::PP;
	return eval { JSON::PP::decode_json($body) };
}

# The ids (status page "id", store file "<id>.der") of the staples of
# certificate $name, as the status page at 127.0.0.1:$port/status lists
# them. In scalar context: the one id, or a death when there is not one.
sub staple_ids {
	my ($self, $port, $name) = @_;
	my $page = $self->status_page($port) or die "no status page on port $port\n";
	my $sha = $self->cert_sha256($name);
	my @ids = map { $_->{id} }
		grep { ($_->{sha256} // '') eq $sha } @{$page->{certificates}};
	return @ids if wantarray;
	die scalar(@ids) . " staples of $name on the status page, not one\n" unless @ids == 1;
	return $ids[0];
}

# A plain HTTP/1.0 request to 127.0.0.1:$port; returns (status, headers
# as one string, body).
sub http_request {
	my ($self, $port, $path, %o) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10 * $SLOW)
		or return (0, '', "connect: $!");
	my $method = $o{method} // 'GET';
	my $extra = join '', map { "$_: $o{headers}{$_}\r\n" } sort keys %{$o{headers} // {}};
	print $s "$method $path HTTP/1.0\r\nHost: localhost\r\n$extra\r\n";
	local $/;
	my $resp = <$s> // '';
	close $s;
	my ($head, $body) = split /\r\n\r\n/, $resp, 2;
	my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
	return ($status // 0, $head // '', $body // '');
}

# Sets a certificate's line in its CA's index (what `openssl ocsp`
# answers from): good or revoked.
sub set_status {
	my ($self, $name, %o) = @_;
	my $ca = $o{ca};
	my $serial = $self->serial($name);
	my @lines = grep { !/\t\Q$serial\E\t/ } split /\n/,
		$self->read_file("$ca.index");
	push @lines, $o{status} eq 'revoked'
		? "R\t301231235959Z\t251101000000Z\t$serial\tunknown\t/CN=$name"
		: "V\t301231235959Z\t\t$serial\tunknown\t/CN=$name";
	$self->write_file("$ca.index", join("\n", @lines) . "\n");
}

# Writes a DER OCSP response signed by the CA for @certs (names) to $out.
# ndays/nmin set nextUpdate; shift (e.g. '-2d') moves the clock the
# response is made at, through faketime.
sub ocsp_response {
	my ($self, $out, %o) = @_;
	my $ca = $o{ca};
	my $signer = $o{signer} // $ca;
	my @certs = map { "-cert $_.crt" } @{$o{certs}};
	my $validity = defined $o{nmin} ? "-nmin $o{nmin}"
		: '-ndays ' . ($o{ndays} // 1);
	my $prefix = $o{shift} ? "faketime -f '$o{shift}' " : '';
	$self->run_cmd("${prefix}openssl ocsp -index $ca.index -CA $ca.crt"
		. " -rsigner $signer.crt -rkey $signer.key"
		. " -issuer $ca.crt @certs -respout $out $validity");
	return "$self->{dir}/$out";
}

# --- helper daemons -------------------------------------------------------

# Runs @cmd in the test directory, output to NAME.log; returns once the log
# matches $ready. Stopped with the test, with whatever it forked.
sub run_daemon {
	my ($self, $name, $ready, @cmd) = @_;
	my $log = "$self->{dir}/$name.log";
	$self->release_ports;
	my $pid = fork // die "fork: $!\n";
	if (!$pid) {
		# Its own process group: stopping it stops what it forked too.
		setpgrp(0, 0);
		chdir $self->{dir};
		open STDOUT, '>>', $log or POSIX::_exit(127);
		open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
		exec @cmd or POSIX::_exit(127);
	}
	$self->{daemons}{$name} = $pid;
	wait_for(sub { $self->read_file("$name.log") =~ $ready }, 10, "$name ready")
		or die "$name did not start:\n" . $self->read_file("$name.log");
	return $pid;
}

sub stop_daemon {
	my ($self, $name) = @_;
	my $pid = delete $self->{daemons}{$name} or return;
	local $?;
	kill 'TERM', -$pid;
	waitpid($pid, 0);
}

# `openssl ocsp` as a real responder for the CA, on port $o{port}.
sub start_ocsp_responder {
	my ($self, %o) = @_;
	my $ca = $o{ca};
	my $signer = $o{signer} // $ca;
	my @validity = defined $o{nmin} ? ('-nmin', $o{nmin})
		: ('-ndays', $o{ndays} // 1);
	$self->run_daemon($o{name} // 'ocsp', qr/waiting for OCSP client connections/,
		'openssl', 'ocsp', '-port', $o{port}, '-index', "$ca.index",
		'-CA', "$ca.crt", '-rsigner', "$signer.crt", '-rkey', "$signer.key",
		@validity);
}

# How many requests the responder started as $name received.
sub ocsp_requests {
	my ($self, $name) = @_;
	my @r = $self->read_file(($name // 'ocsp') . '.log') =~ /Received request/g;
	return scalar @r;
}

# A DNS server on 127.0.0.1:$port answering A records for %names. A name
# written to the test directory's dns.forget (see forget_name) is answered
# NXDOMAIN from then on.
sub start_dns {
	my ($self, $port, %names) = @_;
	local $ENV{DNS_FORGET} = "$self->{dir}/dns.forget";
	$self->run_daemon('dns', qr/^ready$/m, $^X, "$ROOT/nginx-tests/lib/dns-server.pl",
		$port, map { "$_=$names{$_}" } sort keys %names);
}

sub forget_name {
	my ($self, $name) = @_;
	open my $f, '>>', "$self->{dir}/dns.forget" or die "dns.forget: $!\n";
	print $f "$name\n";
	close $f;
}

# The fault-injecting responder (lib/fault-responder.pl) on $port; another
# one needs another $name.
sub start_fault_responder {
	my ($self, $port, $name) = @_;
	$self->run_daemon($name // 'faults', qr/^ready$/m, $^X,
		"$ROOT/nginx-tests/lib/fault-responder.pl", $port, $self->{dir});
}

sub DESTROY {
	my ($self) = @_;
	# Only the test's own process stops what it started (not a child it
	# forked, when that child exits).
	return unless $self->{owner} == $$;
	$self->stop;
	$self->stop_daemon($_) for keys %{$self->{daemons} // {}};
	if ($ENV{TEST_NGINX_CATLOG} && -f "$self->{dir}/error.log") {
		diag($self->read_log);
	}
}

# A test stopped by a signal (prove interrupted, a timeout) still stops
# what it started: exit runs the END block below.
$SIG{$_} = sub { exit 1 } for qw(TERM INT HUP);

END {
	local $?;
	for my $t (grep { $_->{owner} == $$ } @ALL) {
		$t->stop;
		$t->stop_daemon($_) for keys %{$t->{daemons} // {}};
	}
}

1;
