package Test::Nginx::Stapling;

# What this module's tests need beyond nginx's test harness (Test::Nginx,
# NGINX_TESTS_DIR/lib): run and reload that wait for the workers, a
# throwaway CA, `openssl ocsp` and the other helper daemons, a handshake
# asking for a staple, and an end-of-test check of the error log beside
# nginx's own (alerts): [crit], [emerg], workers killed by a signal, Rust
# panics. The module is loaded as nginx's suite loads modules:
# TEST_NGINX_GLOBALS="load_module /path/ngx_ssl_stapling_module.so;".
# Also read: TEST_NGINX_HOOKS_MODULE (the test-hooks build) and
# TEST_NGINX_SLOW (deadlines times it: scripts/memcheck's valgrind).

use warnings;
use strict;

use base qw/ Test::Nginx /;
our @EXPORT = qw/ wait_for /;

use File::Basename qw/ dirname /;
use IO::Socket::SSL qw/ SSL_VERIFY_NONE SSL_OCSP_TRY_STAPLE SSL_OCSP_NO_STAPLE /;
use Net::SSLeay;
use POSIX ();
use Scalar::Util qw/ weaken /;
use Test::More qw//;
use Time::HiRes qw/ sleep time /;

my $LIB = dirname(__FILE__) . '/../..';
my $SLOW = $ENV{TEST_NGINX_SLOW} || 1;
my $MODULE = qr/load_module\s+\S*ngx_ssl_stapling_module\S*\.so\s*;\n?/;
my @ALL;

# Interrupted (prove stopped or gone), a test still stops what it started.
$SIG{$_} = sub { $SIG{PIPE} = 'IGNORE'; exit 1 } for qw/ TERM INT HUP PIPE /;

sub new {
	my $self = bless Test::Nginx->new, shift;
	chmod 0755, $self->testdir;    # workers running as nobody reach it
	$self->{_expected} = [];
	push @ALL, $self;
	weaken($ALL[-1]);
	return $self;
}

# nginx's end-of-test checks count 2 (alerts, sanitizer), ours 1.
sub plan { $_[0]->SUPER::plan($_[1] + 1) }

# The next configs' %%TEST_GLOBALS%% as $code leaves $_; with_module undoes.
sub edit_globals {
	my ($self, $code) = @_;
	local $_ = $self->test_globals;
	$code->();
	$self->{_test_globals} = $_;
	return $self;
}

sub without_module {
	$_[0]{_without_module} = 1;
	return $_[0]->edit_globals(sub { s/$MODULE// });
}

sub with_module {
	delete @{$_[0]}{qw/ _test_globals _without_module /};
	return $_[0];
}

# The test-hooks build instead of the module; skipped where there is none.
sub with_hooks_module {
	my $hooks = $ENV{TEST_NGINX_HOOKS_MODULE};
	Test::More::plan(skip_all => 'no test-hooks build of the module for this nginx '
		. '(scripts/build test-hooks; TEST_NGINX_HOOKS_MODULE)') unless $hooks && -f $hooks;
	return $_[0]->edit_globals(sub { s/$MODULE/load_module $hooks;\n/ });
}

# Stream servers have ssl_stapling since nginx 1.27.2.
sub stream_stapling { $_[0]->has_version('1.27.2') && $_[0]->has_module('stream_ssl') }

# A file of the test directory (or an absolute path); '' when missing.
sub read_file {
	my ($self, $name) = @_;
	open my $fh, '<', $name =~ m{^/} ? $name : $self->testdir . "/$name" or return '';
	binmode $fh;
	local $/;
	return scalar(<$fh>) // '';
}

# Test::Nginx gives nginx 5 s to write its pid: not enough under valgrind.
sub waitforfile {
	my ($self, $file, $pid) = @_;
	my $seen = wait_for(sub {
		-e $file ? 'file' : $pid && POSIX::waitpid($pid, POSIX::WNOHANG()) ? 'exited' : 0
	}, 30) // '';
	return $seen eq 'file' ? 1 : 0;
}

# Starts nginx (its config says daemon off) and waits for its workers.
sub run {
	my ($self, %o) = @_;
	die "TEST_NGINX_GLOBALS must load the module: "
		. "\"load_module /path/to/ngx_ssl_stapling_module.so;\"\n"
		unless $self->{_without_module} || $self->test_globals =~ $MODULE;
	$self->SUPER::run();
	my $n = $o{workers} // 1;
	wait_for(sub { my @w = $self->workers; @w >= $n }, 10) or die "nginx started no workers\n";
	return $self;
}

# The pids of the master's live worker processes.
sub workers {
	my ($self) = @_;
	my ($m) = $self->read_file('nginx.pid') =~ /(\d+)/ or return ();
	return grep { $self->read_file("/proc/$_/stat") =~ /^\d+ \(.*\) [^Z] $m / }
		map { m{/(\d+)$} } glob '/proc/[0-9]*';
}

# Reloads, waits until new workers run and the old ones are gone; returns
# how long the old ones took to exit, or undef.
sub reload {
	my ($self, %o) = @_;
	my %old = map { $_ => 1 } $self->workers;
	my ($n, $start) = ($o{workers} // scalar(keys %old), time);
	$self->SUPER::reload();
	wait_for(sub {
		my @w = $self->workers;
		(grep { !$old{$_} } @w) >= $n && !grep { $old{$_} } @w;
	}, $o{timeout} // 10) or return undef;
	return time - $start;
}

# nginx -t with this test's config: (exit code, output).
sub test_config {
	my $d = $_[0]->testdir;
	my $out = `$Test::Nginx::NGINX -t -p $d/ -c nginx.conf -e error.log 2>&1`;
	return ($? >> 8, $out);
}

# A line the test provokes on purpose ([alert]s need todo_alerts as well).
sub expect_log {
	push @{$_[0]{_expected}}, $_[1];
	return $_[0];
}

sub DESTROY {
	my ($self) = @_;
	return if $self->{_pid} != $$;
	local $?;
	$self->stop;
	$self->stop_daemon($_) for keys %{$self->{_named} // {}};
	if (Test::More->builder->expected_tests) {
		my @bad = grep { my $l = $_; !grep { $l =~ $_ } @{$self->{_expected}} }
			$self->read_file('error.log')
			=~ /^.*(?:\[(?:crit|alert|emerg)\]|exited on signal|panicked).*$/mg;
		Test::More::is(join("\n", @bad), '',
			'no unexpected crit, alert, emerg, signal or panic in error log');
	}
	$self->SUPER::DESTROY();
	$self->{_pid} = 0;
}

# An object a named sub still holds would be destroyed after Test::More's
# END has counted the tests: its checks run here, before.
END { $_->DESTROY for grep { defined } @ALL }

# Polls $cond every 50 ms until it returns true (returned) or $timeout
# seconds (times TEST_NGINX_SLOW) pass.
sub wait_for {
	my ($cond, $timeout, $what) = @_;
	my $end = time + $timeout * $SLOW;
	while (1) {
		my $r = $cond->();
		return $r if $r;
		Test::More::diag("timed out waiting for $what") if time > $end && $what;
		return if time > $end;
		sleep 0.05;
	}
}

# One full TLS handshake to 127.0.0.1:$port asking for a staple (unless
# no_status): { ok => 1, staple (DER or undef), cipher, serial, response }
# or { ok => 0, error }.
sub handshake {
	my ($self, $port, %o) = @_;
	my $staple;
	my $s = IO::Socket::SSL->new(PeerAddr => "127.0.0.1:$port", Timeout => 10 * $SLOW,
		SSL_verify_mode => SSL_VERIFY_NONE, SSL_session_cache_size => 0,
		SSL_ocsp_mode => $o{no_status} ? SSL_OCSP_NO_STAPLE : SSL_OCSP_TRY_STAPLE,
		SSL_ocsp_staple_callback => sub {
			$staple = Net::SSLeay::i2d_OCSP_RESPONSE($_[1]) if $_[1];
		},
		($o{sni} ? (SSL_hostname => $o{sni}) : ()),
		($o{version} ? (SSL_version => $o{version}) : ()),
		($o{ciphers} ? (SSL_cipher_list => $o{ciphers}) : ()),
	) or return { ok => 0, error => "$IO::Socket::SSL::SSL_ERROR" };
	my %r = (ok => 1, staple => $staple, cipher => $s->get_cipher,
		serial => uc Net::SSLeay::P_ASN1_INTEGER_get_hex(
			Net::SSLeay::X509_get_serialNumber($s->peer_certificate)));
	if (defined $o{request}) {
		print $s $o{request};
		local $/;
		$r{response} = <$s>;
	}
	return \%r;
}

# A handshake to $port that succeeded without a staple (a failed one is
# not: said, and false).
sub unstapled {
	my ($self, $port, %o) = @_;
	my $r = $self->handshake($port, %o);
	Test::More::diag("handshake to port $port failed: $r->{error}") unless $r->{ok};
	return $r->{ok} && !defined $r->{staple};
}

# Whether a handshake to each of @ports (numbers port() gives) carries a
# staple; a failed handshake is said, and is not stapled.
sub all_stapled {
	my ($self, @ports) = @_;
	for my $p (@ports) {
		my $r = $self->handshake($p);
		Test::More::diag("handshake to port $p failed: $r->{error}") unless $r->{ok};
		return 0 unless $r->{staple};
	}
	return 1;
}

# nginx.conf text: one TLS server per certificate of @names (NAME.chain.crt
# and NAME.key in this test's directory), listening on 127.0.0.1:$first,
# $first + 1, ...: raw numbers, which write_file_expand maps with port().
# Several instances of a fleet test load the certificates of one.
sub tls_servers {
	my ($self, $first, @names) = @_;
	my $dir = $self->testdir;
	return join '', map {
		"    server {\n        listen 127.0.0.1:" . ($first + $_) . " ssl;\n"
		. "        ssl_certificate $dir/$names[$_].chain.crt;\n"
		. "        ssl_certificate_key $dir/$names[$_].key;\n    }\n"
	} 0 .. $#names;
}

# A plain HTTP/1.0 request to 127.0.0.1:$port: (status, headers, body).
sub http_request {
	my ($self, $port, $path, %o) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10 * $SLOW)
		or return (0, '', "connect: $!");
	my $h = join '', map { "$_: $o{headers}{$_}\r\n" } sort keys %{$o{headers} // {}};
	print $s ($o{method} // 'GET') . " $path HTTP/1.0\r\nHost: localhost\r\n$h\r\n";
	local $/;
	my ($head, $body) = split /\r\n\r\n/, <$s> // '', 2;
	my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
	return ($status // 0, $head // '', $body // '');
}

# The JSON status page at 127.0.0.1:$port/status with every certificate
# listed (?detail=all), or undef.
sub status_page {
	my ($status, undef, $body) = $_[0]->http_request($_[1], '/status?detail=all');
	require JSON::PP;
	return $status == 200 ? eval { JSON::PP::decode_json($body) } : undef;
}

# The ids (status page "id", store file "<id>.der") of certificate $name's
# staples on the status page at $port; in scalar context the one id.
sub staple_ids {
	my ($self, $port, $name) = @_;
	my $page = $self->status_page($port) or die "no status page on port $port\n";
	my $sha = $self->cert_sha256($name);
	my @ids = map { $_->{id} } grep { ($_->{sha256} // '') eq $sha } @{$page->{certificates}};
	return @ids if wantarray;
	die scalar(@ids) . " staples of $name on the status page, not one\n" unless @ids == 1;
	return $ids[0];
}

# `openssl ocsp -resp_text` of a DER response; its validity ("thisUpdate -
# nextUpdate", which tells two responders' staples apart); the serials
# (upper-case hex) of the certificates it is for.
sub staple_text {
	my ($self, $der) = @_;
	return '' unless defined $der;
	$self->write_file('staple-text.der', $der);
	return $self->run_cmd('openssl ocsp -respin staple-text.der -resp_text -noverify');
}

sub staple_validity {
	my $text = $_[0]->staple_text($_[1]);
	return join ' - ', map { $text =~ /$_: (.+)/ ? $1 : '?' } 'This Update', 'Next Update';
}

sub staple_serials { $_[0]->staple_text($_[1]) =~ /^\s+Serial Number: ([0-9A-F]+)\s*$/mg }

# Runs a shell command in the test directory; dies when it fails.
sub run_cmd {
	my ($self, $cmd) = @_;
	my $out = `cd ${\ $self->testdir} && $cmd 2>&1`;
	die "$cmd failed:\n$out\n" if $?;
	Test::Nginx::log_core('||', "$cmd\n$out");
	return $out;
}

sub make_ca {
	my ($self, $name) = @_;
	$self->run_cmd("openssl req -x509 -new -newkey rsa:2048 -nodes -days 30 -subj /CN=$name"
		. " -keyout $name.key -out $name.crt -addext basicConstraints=critical,CA:true"
		. " -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature");
	$self->write_file("$name.index", '');
}

# A leaf certificate of CA $o{ca}, rsa or ec ($o{type}), with OCSP URLs
# ($o{ocsp}: one or a list), must-staple, or more extensions ($o{ext}):
# NAME.crt, NAME.key, NAME.chain.crt (leaf and CA); good in the CA's index.
sub make_cert {
	my ($self, $name, %o) = @_;
	my $ca = $o{ca} or die "make_cert: no ca\n";
	my $key = ($o{type} // 'rsa') eq 'ec'
		? '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1' : '-newkey rsa:2048';
	$self->run_cmd("openssl req -new $key -nodes -subj /CN=$name -keyout $name.key -out $name.csr");
	my @ocsp = ref $o{ocsp} ? @{$o{ocsp}} : $o{ocsp} ? ($o{ocsp}) : ();
	$self->write_file("$name.ext", "subjectAltName=DNS:$name\n"
		. (@ocsp ? 'authorityInfoAccess=' . join(',', map { "OCSP;URI:$_" } @ocsp) . "\n" : '')
		. ($o{must_staple} ? "1.3.6.1.5.5.7.1.24=DER:30:03:02:01:05\n" : '')
		. ($o{ext} ? "$o{ext}\n" : ''));
	$self->run_cmd("openssl x509 -req -in $name.csr -CA $ca.crt -CAkey $ca.key"
		. " -CAcreateserial -days 10 -out $name.crt -extfile $name.ext");
	$self->write_file("$name.chain.crt", $self->read_file("$name.crt") . $self->read_file("$ca.crt"));
	delete $self->{_serial}{$name};
	$self->set_status($name, ca => $ca, status => 'good');
}

# A certificate's serial (upper-case hex), read once per certificate:
# tests ask for it inside their wait loops.
sub serial {
	my ($self, $name) = @_;
	return $self->{_serial}{$name} //= do {
		$self->run_cmd("openssl x509 -in $name.crt -noout -serial") =~ /serial=([0-9A-F]+)/
			or die "no serial for $name\n";
		$1;
	};
}

# Hex SHA-256 of a certificate's DER: its "sha256" on the status page.
sub cert_sha256 {
	my ($self, $name) = @_;
	require Digest::SHA;
	$self->run_cmd("openssl x509 -in $name.crt -outform DER -out $name.der");
	return Digest::SHA::sha256_hex($self->read_file("$name.der"));
}

# A certificate's status in its CA's index (what `openssl ocsp` answers
# from): good or revoked.
sub set_status {
	my ($self, $name, %o) = @_;
	my $serial = $self->serial($name);
	my @lines = grep { !/\t\Q$serial\E\t/ } split /\n/, $self->read_file("$o{ca}.index");
	push @lines, ($o{status} eq 'revoked' ? "R\t301231235959Z\t251101000000Z" : "V\t301231235959Z\t")
		. "\t$serial\tunknown\t/CN=$name";
	$self->write_file("$o{ca}.index", join("\n", @lines) . "\n");
}

# Debian's libfaketime (package faketime), or undef. Preloaded directly:
# the `faketime` wrapper keeps a POSIX semaphore named after its pid, and
# one left behind by a wrapper that was killed makes a later wrapper that
# gets the same pid fail ("sem_open: File exists").
sub faketime_lib {
	my ($lib) = grep { -f } glob('/usr/lib/*/faketime/libfaketime.so.1'), '/usr/lib/faketime/libfaketime.so.1';
	return $lib;
}

# A DER OCSP response of CA $o{ca} (signed by $o{signer}) for @{$o{certs}}
# into file $out; ndays or nmin set nextUpdate; shift (say '-2d') makes it
# at another time, through libfaketime. Returns its path.
sub ocsp_response {
	my ($self, $out, %o) = @_;
	my ($ca, $signer) = ($o{ca}, $o{signer} // $o{ca});
	my $lib = $o{shift} && (faketime_lib() // die "ocsp_response: shift needs libfaketime (Debian's faketime)\n");
	$self->run_cmd(($o{shift} ? "env LD_PRELOAD=$lib FAKETIME='$o{shift}' " : '')
		. "openssl ocsp -index $ca.index -CA $ca.crt -rsigner $signer.crt -rkey $signer.key"
		. " -issuer $ca.crt " . join(' ', map { "-cert $_.crt" } @{$o{certs}})
		. " -respout $out " . (defined $o{nmin} ? "-nmin $o{nmin}" : '-ndays ' . ($o{ndays} // 1)));
	return $self->testdir . "/$out";
}

# Test::Nginx's run_daemon for @cmd, in the test directory and a process
# group of its own, output to NAME.log; returns once that log says $ready.
sub start_daemon {
	my ($self, $name, $ready, @cmd) = @_;
	my $log = $self->testdir . "/$name.log";
	# The log is appended to when a daemon is started again: its ready
	# line is looked for only in what this start writes.
	my $mark = -e $log ? -s $log : 0;
	$self->run_daemon(sub {
		setpgrp(0, 0);
		chdir $self->testdir;
		open STDOUT, '>>', $log and open STDERR, '>&', \*STDOUT and exec @cmd;
		POSIX::_exit(127);
	});
	$self->{_named}{$name} = $self->{_daemons}[-1];
	wait_for(sub { substr($self->read_file("$name.log"), $mark) =~ $ready }, 10)
		or die "$name did not start:\n" . substr($self->read_file("$name.log"), $mark);
}

# The pid of daemon $name (the program itself: start_daemon execs it).
sub daemon_pid { $_[0]{_named}{$_[1]} }

# Stops daemon $name and whatever it forked.
sub stop_daemon {
	my ($self, $name) = @_;
	my $pid = delete $self->{_named}{$name} or return;
	local $?;
	kill 'TERM', -$pid;
	waitpid($pid, 0);
	$self->{_daemons} = [ grep { $_ != $pid } @{$self->{_daemons}} ];
}

# `openssl ocsp` for CA $o{ca} on $o{port}; ocsp_requests counts requests.
# $o{no_certs}: responses without the signer's certificate (about 0.5 KB
# instead of 1.3 KB, as many CAs' responders answer).
sub start_ocsp_responder {
	my ($self, %o) = @_;
	my ($ca, $signer) = ($o{ca}, $o{signer} // $o{ca});
	$self->start_daemon($o{name} // 'ocsp', qr/waiting for OCSP client connections/,
		'openssl', 'ocsp', '-port', $o{port}, '-index', "$ca.index", '-CA', "$ca.crt",
		'-rsigner', "$signer.crt", '-rkey', "$signer.key",
		$o{no_certs} ? ('-resp_no_certs') : (),
		defined $o{nmin} ? ('-nmin', $o{nmin}) : ('-ndays', $o{ndays} // 1));
}

# Requests an `openssl ocsp` responder logged ("Received request" up to
# OpenSSL 3.0, "ocsp: received request" since 3.5).
sub ocsp_requests {
	my ($self, $name) = @_;
	return scalar(() = $self->read_file(($name // 'ocsp') . '.log') =~ /received request/gi);
}

# A DNS server on 127.0.0.1:$port (UDP) answering A records for %names
# (lib/dns-server.pl); a name given to forget_name is NXDOMAIN from then on.
sub start_dns {
	my ($self, $port, %names) = @_;
	local $ENV{DNS_FORGET} = $self->testdir . '/dns.forget';
	$self->start_daemon('dns', qr/^ready$/m, $^X, "$LIB/dns-server.pl", $port,
		map { "$_=$names{$_}" } sort keys %names);
}

sub forget_name { $_[0]->write_file('dns.forget', $_[0]->read_file('dns.forget') . "$_[1]\n") }

# The fault-injecting responder (lib/fault-responder.pl) on $port.
sub start_fault_responder {
	my ($self, $port, $name) = @_;
	$self->start_daemon($name // 'faults', qr/^ready$/m, $^X,
		"$LIB/fault-responder.pl", $port, $self->testdir);
}

# Valkey's server and client where the system has them, else Redis's
# (Debian: valkey-server since 13, redis-server in 12).
sub _kv_bin {
	my ($what) = @_;
	for my $name ("valkey-$what", "redis-$what") {
		return $name if grep { -x "$_/$name" } split /:/, $ENV{PATH};
	}
	return;
}

# Skips the test where there is neither (before the plan).
sub has_redis {
	my ($self) = @_;
	Test::More::plan(skip_all => "no valkey-server or redis-server (Debian's packages)")
		unless _kv_bin('server') && _kv_bin('cli');
	return $self;
}

# Which server has_redis found: "valkey-server" or "redis-server".
sub redis_server { _kv_bin('server') }

# That server on 127.0.0.1:$port with password $password, no persistence,
# as daemon 'redis' (again after stop_daemon('redis')); with tls =>
# [cert, key], TLS only on that port.
sub start_redis {
	my ($self, $port, $password, %o) = @_;
	$self->{_redis} = [$port, $password];
	# Its log is new at each start: start_daemon waits for "Ready" in it.
	unlink $self->testdir . '/redis.log';
	my @port = $o{tls} ? ('--port', 0, '--tls-port', $port, '--tls-cert-file', $o{tls}[0],
		'--tls-key-file', $o{tls}[1], '--tls-auth-clients', 'no') : ('--port', $port);
	$self->start_daemon('redis', qr/Ready to accept connections/, _kv_bin('server'),
		@port, '--bind', '127.0.0.1', '--requirepass', $password,
		'--save', '', '--appendonly', 'no', '--dir', $self->testdir);
}

# redis-cli against that server: its output, without the trailing newline.
# Arguments are passed as they are (binary values through a file: "-x").
sub redis {
	my ($self, @args) = @_;
	my ($port, $password) = @{$self->{_redis}};
	my ($x, $stdin) = ('', '');
	if (@args && ref $args[-1] eq 'SCALAR') {
		my $file = $self->testdir . '/redis-cli.in';
		open my $f, '>', $file or die "$file: $!\n";
		binmode $f;
		print $f ${pop @args};
		close $f;
		($x, $stdin) = (' -x', " < $file");
	}
	local $ENV{REDISCLI_AUTH} = $password;
	local $ENV{VALKEYCLI_AUTH} = $password;
	my $cmd = join ' ', _kv_bin('cli') . $x, '-h', '127.0.0.1', '-p', $port,
		map { "'$_'" } @args;
	my $out = `$cmd$stdin 2>&1`;
	chomp $out;
	return $out;
}

1;
