// Stand-ins for the ExtendScript objects FocusDrop's Adobe scripts use (File, Folder, MenuElement, app,
// BridgeTalk, $, alert), on Node's fs, so that the tests run the shipped scripts themselves. They refuse
// what Adobe's refuse: File and Folder operations return false rather than throw; a name is URI-encoded
// (File.decode undoes it; decodeURI leaves %23 and %26); $.fileName names the running script only while
// it loads (in a menu callback it is another file); a second menu element with the same id throws.
//   node extendscript.js bridge SCRIPT FRAME...   choose "Send to FocusDrop" with FRAME... selected
//   node extendscript.js bridge-twice SCRIPT ...  the same, the script loaded twice (two startup folders)
//   node extendscript.js photoshop SCRIPT         run "Open latest FocusDrop result"
// FOCUSDROP_FAIL_COPY=TEXT: File.copy returns false for a file whose path contains TEXT.
// Prints one JSON line: {"alerts": [...], "opened": path or null, "menus": [...]}.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const [, , mode, scriptPath, ...selected] = process.argv;
const application = mode.replace("-twice", "");
const failCopy = process.env.FOCUSDROP_FAIL_COPY;
const alerts = [], menus = [];
let opened = null;

class Entry {
    constructor(p) { this.fsName = path.resolve(String(p)); }
    get name() { return encodeURIComponent(path.basename(this.fsName)); }
    get parent() { return new Folder(path.dirname(this.fsName)); }
    get exists() { return fs.existsSync(this.fsName); }
    get modified() { return fs.statSync(this.fsName).mtime; }
}
class File extends Entry {
    constructor(p) { super(p); this.encoding = "BINARY"; this._lines = null; this._out = null; }
    get exists() { return fs.existsSync(this.fsName) && fs.statSync(this.fsName).isFile(); }
    open(mode) {
        if (mode === "r") { this._lines = fs.readFileSync(this.fsName, "utf8").split(/\r?\n/); }
        else { this._out = ""; }
        return true;
    }
    get eof() { return this._lines.length === 0 || (this._lines.length === 1 && this._lines[0] === ""); }
    readln() { return this._lines.shift(); }
    write(text) { this._out += text; return true; }
    close() { if (this._out !== null) { fs.writeFileSync(this.fsName, this._out, "utf8"); } return true; }
    copy(target) {
        if (failCopy && this.fsName.includes(failCopy)) { return false; }
        try { fs.copyFileSync(this.fsName, String(target)); return true; } catch (e) { return false; }
    }
}
class Folder extends Entry {
    get exists() { return fs.existsSync(this.fsName) && fs.statSync(this.fsName).isDirectory(); }
    create() { try { fs.mkdirSync(this.fsName); return true; } catch (e) { return false; } }
    rename(name) {
        try { fs.renameSync(this.fsName, path.join(path.dirname(this.fsName), name)); return true; }
        catch (e) { return false; }
    }
    getFiles() {
        return fs.readdirSync(this.fsName).map((n) => {
            const p = path.join(this.fsName, n);
            return fs.statSync(p).isDirectory() ? new Folder(p) : new File(p);
        });
    }
}
File.decode = (text) => decodeURIComponent(text);
File.encode = (text) => encodeURIComponent(text);
const context = {
    File, Folder, FOCUSDROP_TEST: true,
    $: { fileName: path.resolve(scriptPath) },
    alert: (text) => alerts.push(String(text)),
    BridgeTalk: { appName: application },
    MenuElement: {
        create: (kind, label, where, id) => {
            if (menus.some((m) => m.id === id)) { throw new Error(`a menu element with id ${id} already exists`); }
            const m = { kind, label, where, id };
            menus.push(m);
            return m;
        },
        find: (id) => menus.find((m) => m.id === id) || null,
    },
    app: {
        document: { selections: selected.map((p) => ({ spec: new File(p) })) },
        open: (file) => { opened = file.fsName; return file; },
    },
};
vm.createContext(context);
const source = fs.readFileSync(scriptPath, "utf8");
for (let load = 0; load < (mode.endsWith("-twice") ? 2 : 1); load++) {
    vm.runInContext(source, context, { filename: scriptPath });
}
context.$.fileName = path.join(path.dirname(path.dirname(scriptPath)), "another script.jsx");  // as in a callback
if (application === "bridge") {
    menus.find((m) => m.where === "at the end of Tools").onSelect();
} else {
    vm.runInContext("FocusDropLatest.run()", context);
}
console.log(JSON.stringify({ alerts, opened, menus: menus.map((m) => [m.label, m.where]) }));
