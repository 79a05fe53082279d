// SPDX-License-Identifier: GPL-2.0
/*
 * vmsync guest init: PID 1 of the test initramfs.
 *
 * Mounts the pseudo filesystems, adds the /dev/fd and /dev/std{in,out,err}
 * links that devtmpfs lacks (kselftest's runner writes to /dev/stdout), runs
 * the steps listed in /etc/vmsync-plan and reports them as a KTAP document on
 * the console, then powers off.
 *
 * Plan lines (blank lines and lines starting with '#' are ignored):
 *
 *	insmod NAME PATH [params...]	finit_module(PATH, "params...")
 *	run NAME PATH [args...]		fork/exec PATH, output nested by 4 spaces
 *	rmmod NAME MODNAME		delete_module(MODNAME, O_NONBLOCK)
 *	shell NAME CMD...		/bin/sh -c "CMD...", output nested like "run"
 *
 * The CMD of a "shell" step is the rest of the line, passed as it is (no
 * outer quotes): "shell ksft cd /kselftest && ./run_kselftest.sh".  "run"
 * and "shell" steps pass with exit status 0, are skipped with 4 (KSFT_SKIP)
 * and fail otherwise.
 *
 * Besides the KTAP lines, init prints "# vmsync-init: begin K NAME" before
 * and "# vmsync-init: end K" after each step (KTAP diagnostics).  They let
 * the host parser tell kernel output printed during a step (e.g. a KUnit
 * module's own KTAP document) from init's result lines.
 *
 * Kernel command line: vmsync.timeout=SECS sets the per-step timeout of
 * "run" and "shell" steps (default 240).
 *
 * Only plain libc and raw syscalls are used so that it builds statically
 * for every architecture the project tests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#define PLAN_FILE	"/etc/vmsync-plan"
#define MAX_STEPS	256
#define MAX_ARGS	64
#define LINE_MAX_LEN	4096
#define DEFAULT_TIMEOUT	240
#define KSFT_SKIP	4
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

struct step {
	char *words[MAX_ARGS + 1];	/* verb, name, arguments..., NULL */
	int nwords;
};

static struct step steps[MAX_STEPS];
static int nsteps;
static char cmdline[4096];
static long run_timeout = DEFAULT_TIMEOUT;

/* Write a whole buffer, retrying on short writes and EINTR. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= n;
	}
}

/*
 * Print one formatted line with a single write(), so that it is not split
 * by kernel messages more than necessary.
 */
static void emit(const char *fmt, ...)
{
	char buf[LINE_MAX_LEN + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	write_all(1, buf, n);
}

/*
 * Wait until everything written to the console has left the UART, so that
 * kernel messages printed next (e.g. by a module's init) come after it.
 * Harmless when stdout is not a tty.
 */
static void drain(void)
{
	tcdrain(1);
}

static void setup_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

static void do_mount(const char *src, const char *dir, const char *type,
		     int fatal)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, 0, NULL) < 0 && errno != EBUSY) {
		emit("# vmsync-init: mount %s on %s: errno %d (%s)%s", type,
		     dir, errno, strerror(errno), fatal ? "" : " (ignored)");
	}
}

/* The links udev or mdev would add; existing entries are left alone. */
static void dev_links(void)
{
	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" },
		{ "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" },
		{ "/proc/self/fd/2", "/dev/stderr" },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(links); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			emit("# vmsync-init: symlink %s: errno %d (%s)",
			     links[i][1], errno, strerror(errno));
}

static void read_cmdline(void)
{
	const char *p;
	ssize_t n;
	int fd;

	fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return;
	cmdline[n] = '\0';

	for (p = cmdline; (p = strstr(p, "vmsync.timeout=")); p++) {
		long t;

		if (p != cmdline && p[-1] != ' ')
			continue;
		t = strtol(p + strlen("vmsync.timeout="), NULL, 10);
		if (t > 0)
			run_timeout = t;
	}
}

/* The next blank-separated word of *p, terminated in place; NULL at the end. */
static char *next_word(char **p)
{
	char *w = *p + strspn(*p, " \t\r");
	char *end;

	if (!*w)
		return NULL;
	end = w + strcspn(w, " \t\r");
	if (*end)
		*end++ = '\0';
	*p = end;
	return w;
}

/* Split the plan into steps; the strings stay in the malloc'ed buffer. */
static int read_plan(void)
{
	char *buf, *line, *save = NULL;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(PLAN_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';

	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct step *s;
		char *w, *end;

		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#' || *line == '\r')
			continue;
		if (nsteps == MAX_STEPS) {
			emit("# vmsync-init: too many plan steps, rest ignored");
			break;
		}
		s = &steps[nsteps++];
		while (s->nwords < MAX_ARGS && (w = next_word(&line))) {
			s->words[s->nwords++] = w;
			if (s->nwords != 2 || strcmp(s->words[0], "shell"))
				continue;
			/* "shell NAME CMD": CMD is the rest of the line. */
			line += strspn(line, " \t");
			end = line + strlen(line);
			while (end > line && strchr(" \t\r", end[-1]))
				*--end = '\0';
			if (*line)
				s->words[s->nwords++] = line;
			break;
		}
		s->words[s->nwords] = NULL;
	}
	return 0;
}

static void report_errno(const char *name, const char *what, int err)
{
	emit("# %s: %serrno %d (%s)", name, what, err, strerror(err));
}

static int step_insmod(struct step *s, const char *name)
{
	char params[LINE_MAX_LEN] = "";
	size_t len = 0;
	int fd, i, ret;

	if (s->nwords < 3) {
		emit("# %s: usage: insmod NAME PATH [params...]", name);
		return -1;
	}
	for (i = 3; i < s->nwords; i++) {
		int n = snprintf(params + len, sizeof(params) - len, "%s%s",
				 len ? " " : "", s->words[i]);

		if (n < 0 || (size_t)n >= sizeof(params) - len) {
			emit("# %s: module parameters too long", name);
			return -1;
		}
		len += n;
	}

	fd = open(s->words[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report_errno(name, "open module file: ", errno);
		return -1;
	}
	drain();
	ret = syscall(SYS_finit_module, fd, params, 0);
	if (ret < 0) {
		int err = errno;

		close(fd);
		drain();
		report_errno(name, "", err);
		return -1;
	}
	close(fd);
	return 0;
}

static int step_rmmod(struct step *s, const char *name)
{
	if (s->nwords < 3) {
		emit("# %s: usage: rmmod NAME MODNAME", name);
		return -1;
	}
	drain();
	if (syscall(SYS_delete_module, s->words[2], O_NONBLOCK) < 0) {
		int err = errno;

		drain();
		report_errno(name, "", err);
		return -1;
	}
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Line assembler for child output: every line is re-printed indented. */
struct relay {
	char buf[LINE_MAX_LEN];
	size_t len;
};

static void relay_flush(struct relay *r)
{
	char out[LINE_MAX_LEN + 8];
	size_t len = r->len;

	while (len && r->buf[len - 1] == '\r')
		len--;
	memcpy(out, "    ", 4);
	memcpy(out + 4, r->buf, len);
	out[4 + len] = '\n';
	write_all(1, out, len + 5);
	r->len = 0;
}

static void relay_feed(struct relay *r, const char *data, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (data[i] == '\n') {
			relay_flush(r);
			continue;
		}
		if (r->len == sizeof(r->buf))
			relay_flush(r);
		r->buf[r->len++] = data[i];
	}
}

/*
 * Read what is available without blocking, at most max_reads chunks so that
 * a flooding child cannot starve the timeout check; returns 1 at EOF.
 */
static int relay_read(int fd, struct relay *r, int max_reads)
{
	char data[4096];
	ssize_t n;

	while (max_reads-- > 0) {
		n = read(fd, data, sizeof(data));
		if (n > 0) {
			relay_feed(r, data, n);
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 0 : 1;
	}
	return 0;
}

/*
 * Runs argv[0] with its output relayed, nested by 4 spaces, under the step
 * timeout.  Returns 0 pass, 1 skip, -1 fail.
 */
static int run_child(const char *name, char *const argv[])
{
	static char *envp[] = {
		"PATH=/bin:/sbin:/usr/bin:/usr/sbin",
		"HOME=/",
		"TERM=dumb",
		NULL,
	};
	static struct relay relay;
	long long deadline;
	int pfd[2], status = 0, eof = 0, reaped = 0, timed_out = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		report_errno(name, "pipe: ", errno);
		return -1;
	}

	pid = fork();
	if (pid < 0) {
		report_errno(name, "fork: ", errno);
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (null >= 0)
			dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execve(argv[0], argv, envp);
		dprintf(2, "exec %s: errno %d (%s)\n", argv[0], errno,
			strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	relay.len = 0;
	deadline = now_ms() + run_timeout * 1000LL;

	while (!reaped) {
		struct pollfd p = { .fd = eof ? -1 : pfd[0], .events = POLLIN };
		long long left = deadline - now_ms();
		pid_t w;

		if (left <= 0) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			reaped = 1;
			break;
		}
		/* Short naps after EOF: the child may close stdout early. */
		if (poll(&p, 1, eof ? 50 : (left > 1000 ? 1000 : left)) > 0)
			eof = relay_read(pfd[0], &relay, 64);
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			reaped = 1;
	}
	/* Stray descendants die with the step. */
	kill(-pid, SIGKILL);
	if (!eof)
		relay_read(pfd[0], &relay, 1024);
	if (relay.len)
		relay_flush(&relay);
	close(pfd[0]);

	if (timed_out) {
		emit("# %s: timeout (%ld s)", name, run_timeout);
		return -1;
	}
	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 0)
			return 0;
		if (WEXITSTATUS(status) == KSFT_SKIP)
			return 1;
		emit("# %s: exit status %d", name, WEXITSTATUS(status));
		return -1;
	}
	if (WIFSIGNALED(status)) {
		emit("# %s: killed by signal %d", name, WTERMSIG(status));
		return -1;
	}
	emit("# %s: unexpected wait status 0x%x", name, status);
	return -1;
}

static int step_run(struct step *s, const char *name)
{
	if (s->nwords < 3) {
		emit("# %s: usage: run NAME PATH [args...]", name);
		return -1;
	}
	return run_child(name, &s->words[2]);
}

static int step_shell(struct step *s, const char *name)
{
	char *const argv[] = { "/bin/sh", "-c", s->words[2], NULL };

	if (s->nwords < 3) {
		emit("# %s: usage: shell NAME CMD...", name);
		return -1;
	}
	return run_child(name, argv);
}

static void reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void run_step(int k, struct step *s)
{
	const char *verb = s->words[0];
	char fallback[32];
	const char *name;
	const char *skip = NULL;
	int ret;

	if (s->nwords >= 2) {
		name = s->words[1];
	} else {
		snprintf(fallback, sizeof(fallback), "step-%d", k);
		name = fallback;
	}
	emit("# vmsync-init: begin %d %s", k, name);

	if (!strcmp(verb, "insmod")) {
		ret = step_insmod(s, name);
	} else if (!strcmp(verb, "rmmod")) {
		ret = step_rmmod(s, name);
	} else if (!strcmp(verb, "run")) {
		ret = step_run(s, name);
		if (ret == 1)
			skip = "exit status 4 (KSFT_SKIP)";
	} else if (!strcmp(verb, "shell")) {
		ret = step_shell(s, name);
		if (ret == 1)
			skip = "exit status 4 (KSFT_SKIP)";
	} else {
		emit("# %s: unknown plan verb '%s'", name, verb);
		ret = -1;
	}
	reap_orphans();
	drain();
	emit("# vmsync-init: end %d", k);

	if (skip)
		emit("ok %d %s # SKIP %s", k, name, skip);
	else
		emit("%s %d %s", ret == 0 ? "ok" : "not ok", k, name);
	drain();
}

int main(void)
{
	int i;

	/* Keep stdio unbuffered; emit() writes whole lines anyway. */
	setvbuf(stdout, NULL, _IONBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);

	/*
	 * The kernel opened /dev/console (from the cpio) as fds 0-2.  Say
	 * hello first, then reopen the console from devtmpfs to be safe.
	 */
	if (fcntl(1, F_GETFD) < 0) {
		do_mount("devtmpfs", "/dev", "devtmpfs", 1);
		setup_console();
		emit("vmsync-init: reached init");
	} else {
		emit("vmsync-init: reached init");
		do_mount("devtmpfs", "/dev", "devtmpfs", 1);
		setup_console();
	}
	do_mount("proc", "/proc", "proc", 1);
	do_mount("sysfs", "/sys", "sysfs", 1);
	dev_links();
	do_mount("tracefs", "/sys/kernel/tracing", "tracefs", 0);
	read_cmdline();

	emit("KTAP version 1");
	if (read_plan() < 0) {
		emit("# vmsync-init: no plan");
		emit("1..0");
	} else {
		emit("1..%d", nsteps);
		for (i = 0; i < nsteps; i++)
			run_step(i + 1, &steps[i]);
	}

	/* "vmsync.shell" in cmdline[] is accepted and ignored (for now). */

	emit("vmsync-init: done");
	drain();
	sync();
#if defined(__i386__) || defined(__x86_64__)
	/* No ACPI in the test kernel: reset, and QEMU -no-reboot exits. */
	reboot(RB_AUTOBOOT);
#else
	reboot(RB_POWER_OFF);
#endif
	/* Dying as PID 1 panics; panic=-1 then resets and QEMU exits. */
	emit("# vmsync-init: reboot: errno %d (%s)", errno, strerror(errno));
	return 1;
}
