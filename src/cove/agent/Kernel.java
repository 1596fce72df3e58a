// A Java kernel for the `run_code` tool: cells run one after another in one JShell.
//
// The tool agent (tools/code.py) starts it with `java ... --add-opens java.base/java.io=ALL-UNNAMED
// Kernel.java CONTROL_FD OUTPUT_LIMIT STDOUT_FD STDERR_FD` (a single-file source launch: JDK 11
// or newer, with the jdk.jshell module) on the first java cell of a session and keeps it, so
// variables, methods, classes and imports persist, as in jshell. It speaks kernel.py's protocol:
// one JSON line per cell on the socket CONTROL_FD, `{"started": true}` at once, then one JSON line
// with the cell's outcome. Java cannot open an inherited socket by its number, hence the opened
// java.io: the kernel sets the number into a FileDescriptor itself.
//
// JShell's source analysis splits a cell into snippets, run in turn in this JVM (the "local"
// execution engine: no second JVM to start) until one fails to compile or throws; the value of a
// final expression is the cell's result, as jshell prints it. System.out and System.err write into
// the cell's output; what child processes write to fds 1 and 2 is read from the pipes' other ends.
// SIGINT stops a running cell (JShell.stop()); between cells it does nothing.

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.SourceCodeAnalysis.CompletionInfo;
import jdk.jshell.SourceCodeAnalysis.Completeness;

public class Kernel {
    /** One stream of the running cell's output: up to the limit, the rest counted. */
    static final class Capture extends OutputStream {
        final int limit;
        final ByteArrayOutputStream kept = new ByteArrayOutputStream();
        long dropped;

        Capture(int limit) {
            this.limit = limit;
        }

        @Override
        public synchronized void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] data, int offset, int length) {
            int room = Math.max(Math.min(limit - kept.size(), length), 0);
            kept.write(data, offset, room);
            dropped += length - room;
        }

        /** Drains what a child process wrote to the pipe and is there to read now. */
        synchronized void drain(InputStream pipe) {
            try {
                byte[] buffer = new byte[65536];
                for (int available = pipe.available(); available > 0; available = pipe.available()) {
                    int count = pipe.read(buffer, 0, Math.min(available, buffer.length));
                    if (count < 0) return;
                    write(buffer, 0, count);
                }
            } catch (IOException ended) {
                // the pipe is gone: nothing more from it
            }
        }

        /** Reads the pipe into this stream until it ends, on a thread of its own. */
        void follow(InputStream pipe) {
            Thread reader = new Thread(() -> {
                byte[] buffer = new byte[65536];
                try {
                    for (int count = pipe.read(buffer); count >= 0; count = pipe.read(buffer)) {
                        write(buffer, 0, count);
                    }
                } catch (IOException ended) {
                    // the pipe is gone
                }
            }, "cove-kernel-output");
            reader.setDaemon(true);
            reader.start();
        }

        /** Appends this stream's part of the answer and starts afresh for the next cell. */
        synchronized void take(StringBuilder answer, String name) {
            String text = kept.toString(StandardCharsets.UTF_8);
            answer.append(quote(name)).append(": ").append(text.isEmpty() ? "[]" : "[" + quote(text) + "]");
            answer.append(", ").append(quote(name + "_truncated_bytes")).append(": ").append(dropped);
            kept.reset();
            dropped = 0;
        }
    }

    final JShell shell;
    final SourceCodeAnalysis analysis;
    final int limit;
    final Capture stdout;
    final Capture stderr;
    final InputStream stdoutPipe;
    final InputStream stderrPipe;
    int executionCount;
    volatile boolean interrupted;

    Kernel(int limit, int stdoutFd, int stderrFd) throws IOException {
        this.limit = limit;
        stdout = new Capture(limit);
        stderr = new Capture(limit);
        // The pipes by their paths: new open files, blocking, unlike the agent's ends.
        stdoutPipe = new FileInputStream("/proc/self/fd/" + stdoutFd);
        stderrPipe = new FileInputStream("/proc/self/fd/" + stderrFd);
        stdout.follow(stdoutPipe);
        stderr.follow(stderrPipe);
        PrintStream out = new PrintStream(stdout, true, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(stderr, true, StandardCharsets.UTF_8);
        System.setOut(out);
        System.setErr(err);
        System.setIn(InputStream.nullInputStream());
        shell = JShell.builder().executionEngine("local").out(out).err(err).in(InputStream.nullInputStream()).build();
        analysis = shell.sourceCodeAnalysis();
    }

    /** Runs one cell; answers its outcome as the JSON line kernel.py's protocol has. */
    String runCell(String code) {
        executionCount++;
        long started = System.nanoTime();
        interrupted = false;
        String value = null;
        String error = null;
        String remaining = code;
        int offset = 0; // where `remaining` starts in the cell
        try {
            while (error == null) {
            CompletionInfo info = analysis.analyzeCompletion(remaining);
            Completeness completeness = info.completeness();
            if (completeness == Completeness.EMPTY) break;
            boolean complete = completeness.isComplete();
            String source = complete ? info.source() : remaining; // incomplete: compiled as it is, for the error
            int start = offset + (remaining.length() - remaining.stripLeading().length());
            value = null;
            for (SnippetEvent event : shell.eval(source)) {
                if (event.causeSnippet() != null) continue; // another snippet, updated by this one
                if (event.exception() != null) {
                    error = describe(event.exception());
                } else if (event.status() == Snippet.Status.REJECTED) {
                    error = compileError(event.snippet(), code, start);
                } else if (event.value() != null && shown(event.snippet())) {
                    value = event.value();
                }
            }
            if (interrupted) {
                error = error("Interrupted", "the cell was stopped (SIGINT); the kernel keeps its state", "");
            }
            if (!complete) break;
            offset += remaining.length() - info.remaining().length();
            remaining = info.remaining();
            }
        } catch (RuntimeException failure) { // JShell's own, say: the kernel keeps serving
            error = error(failure.getClass().getName(), String.valueOf(failure.getMessage()), "");
        }
        double elapsed = (System.nanoTime() - started) / 1e9;
        System.out.flush();
        System.err.flush();
        stdout.drain(stdoutPipe);
        stderr.drain(stderrPipe);
        StringBuilder answer = new StringBuilder("{");
        answer.append("\"execution_count\": ").append(executionCount);
        answer.append(", \"execution_time\": ").append(elapsed);
        answer.append(", \"results\": [");
        if (value != null && error == null) {
            String result = "{\"text/plain\": " + quote(value) + ", \"isMainResult\": true}";
            if (result.length() > limit) {
                String note = "(a result of " + result.length() + " bytes was left out: results are at most "
                        + limit + " bytes a cell)";
                result = "{\"text/plain\": " + quote(note) + ", \"isMainResult\": true}";
            }
            answer.append(result);
        }
        answer.append("], ");
        stdout.take(answer, "stdout");
        answer.append(", ");
        stderr.take(answer, "stderr");
        answer.append(", \"error\": ").append(error == null ? "null" : error).append("}");
        return answer.toString();
    }

    /** SIGINT: stop the running cell. JShell stops it with Thread.stop up to JDK 19, and from JDK 20 by
     * checks it adds to the cell's own loops; an interrupt of its threads ends a sleep or a wait too. */
    void stop() {
        interrupted = true;
        shell.stop();
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            ThreadGroup group = thread.getThreadGroup();
            if (group != null && group.getName().startsWith("JShell")) thread.interrupt();
        }
    }

    /** An expression's value is shown; a declaration's or an assignment's is not, as in a notebook. */
    static boolean shown(Snippet snippet) {
        Snippet.SubKind kind = snippet.subKind();
        return kind == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND
                || kind == Snippet.SubKind.VAR_VALUE_SUBKIND
                || kind == Snippet.SubKind.OTHER_EXPRESSION_SUBKIND;
    }

    /** The exception's class, message and stack (the cell's frames), then its causes'. */
    static String describe(JShellException thrown) {
        StringBuilder trace = new StringBuilder();
        for (Throwable at = thrown; at != null; at = at.getCause()) {
            trace.append(at == thrown ? "" : "Caused by: ").append(className(at));
            trace.append(at.getMessage() == null ? "" : ": " + at.getMessage()).append('\n');
            for (StackTraceElement frame : at.getStackTrace()) {
                trace.append("\tat ").append(frame).append('\n');
            }
        }
        return error(className(thrown), thrown.getMessage() == null ? "" : thrown.getMessage(), trace.toString());
    }

    /** The class of what the cell threw (JShell carries it as a name), or of JShell's own exception. */
    static String className(Throwable thrown) {
        return thrown instanceof EvalException
                ? ((EvalException) thrown).getExceptionClassName()
                : thrown.getClass().getName();
    }

    /** A snippet that did not compile: javac's diagnostics, with the cell's line and a caret. */
    String compileError(Snippet snippet, String code, int start) {
        List<String> messages = new ArrayList<>();
        StringBuilder trace = new StringBuilder();
        shell.diagnostics(snippet).filter(Diag::isError).forEach(diag -> {
            String message = diag.getMessage(Locale.ROOT).replaceFirst("\\s*location: class\\s*$", "");
            messages.add(message);
            int at = (int) Math.min(start + Math.max(diag.getPosition(), 0), code.length());
            int lineStart = code.lastIndexOf('\n', at - 1) + 1;
            int lineEnd = code.indexOf('\n', at);
            String line = code.substring(lineStart, lineEnd < 0 ? code.length() : lineEnd);
            long number = code.substring(0, lineStart).chars().filter(c -> c == '\n').count() + 1;
            trace.append("<cell ").append(executionCount).append(">:").append(number).append(": error: ")
                    .append(message).append('\n').append(line).append('\n')
                    .append(" ".repeat(at - lineStart)).append("^\n");
        });
        if (messages.isEmpty()) { // rejected for a reason javac did not tell
            messages.add("the snippet was rejected: " + snippet.source().strip());
        }
        return error("CompilationError", String.join("; ", messages), trace.toString());
    }

    static String error(String name, String value, String traceback) {
        return "{\"name\": " + quote(name) + ", \"value\": " + quote(value)
                + ", \"traceback\": " + quote(traceback) + "}";
    }

    static String quote(String text) {
        StringBuilder quoted = new StringBuilder("\"");
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '"' || c == '\\') quoted.append('\\').append(c);
            else if (c < 0x20 || c > 0x7e) quoted.append(String.format("\\u%04x", (int) c));
            else quoted.append(c);
        }
        return quoted.append('"').toString();
    }

    /** The "code" of a `{"code": "..."}` line, as json.dumps writes it (ASCII, escaped). */
    static String codeOf(String line) {
        int at = line.indexOf("\"code\"");
        at = line.indexOf('"', line.indexOf(':', at) + 1) + 1;
        StringBuilder code = new StringBuilder();
        for (char c = line.charAt(at); c != '"'; c = line.charAt(++at)) {
            if (c != '\\') {
                code.append(c);
                continue;
            }
            char escaped = line.charAt(++at);
            switch (escaped) {
                case 'n': code.append('\n'); break;
                case 't': code.append('\t'); break;
                case 'r': code.append('\r'); break;
                case 'b': code.append('\b'); break;
                case 'f': code.append('\f'); break;
                case 'u': code.append((char) Integer.parseInt(line.substring(at + 1, at + 5), 16)); at += 4; break;
                default: code.append(escaped); // " \ /
            }
        }
        return code.toString();
    }

    /** An inherited file descriptor by its number (java.io must be opened to the kernel for this). */
    static FileDescriptor descriptor(int number) throws ReflectiveOperationException {
        FileDescriptor descriptor = new FileDescriptor();
        Field fd = FileDescriptor.class.getDeclaredField("fd");
        fd.setAccessible(true);
        fd.setInt(descriptor, number);
        return descriptor;
    }

    public static void main(String[] args) throws Exception {
        FileDescriptor control = descriptor(Integer.parseInt(args[0]));
        Kernel kernel = new Kernel(Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]));
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), signal -> kernel.stop());
        BufferedReader requests = new BufferedReader(
                new InputStreamReader(new FileInputStream(control), StandardCharsets.UTF_8));
        OutputStream answers = new FileOutputStream(control);
        for (String line = requests.readLine(); line != null; line = requests.readLine()) {
            answers.write("{\"started\": true}\n".getBytes(StandardCharsets.UTF_8));
            answers.write((kernel.runCell(codeOf(line)) + "\n").getBytes(StandardCharsets.UTF_8));
        }
        System.exit(0); // the agent is gone
    }
}
