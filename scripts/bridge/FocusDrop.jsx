// FocusDrop for Adobe Bridge: a startup script that adds "Send to FocusDrop" to the Tools menu and to the
// thumbnail context menu. The command copies the selected frames (and their .xmp sidecars) into
// HOT/NAME.partial/, writes manifest.json there, then renames the folder to HOT/NAME/: the rename is the
// FocusDrop service's signal that the stack is complete. The focus order is left to the service, which finds
// it from the frames (Bridge passes the selection in the order it was clicked).
//
// The hot folder comes from FocusDrop.settings beside this script (one "key=value" per line), written by
// `focusdrop install bridge`. ExtendScript is ES3: no JSON object, no Array.prototype.map, no let.

var FocusDrop = (function () {
    var SETTINGS = "FocusDrop.settings";
    var HERE = new File($.fileName).parent;  // $.fileName names this script only while it loads
    var MENUS = [["focusdrop_send", "at the end of Tools"], ["focusdrop_send_context", "at the end of Thumbnail"]];

    function readSettings(folder) {
        var file = new File(folder.fsName + "/" + SETTINGS), settings = {}, line, at;
        if (!file.exists) {
            throw new Error("FocusDrop: " + file.fsName + " is missing; run `focusdrop install bridge` again");
        }
        file.encoding = "UTF-8";
        file.open("r");
        while (!file.eof) {
            line = file.readln();
            at = line.indexOf("=");
            if (at > 0) {
                settings[line.substring(0, at)] = line.substring(at + 1);
            }
        }
        file.close();
        return settings;
    }

    function quote(text) {
        var out = "\"", i, c, code;
        for (i = 0; i < text.length; i++) {
            c = text.charAt(i);
            code = text.charCodeAt(i);
            if (c === "\"" || c === "\\") {
                out += "\\" + c;
            } else if (code < 32) {
                out += "\\u" + ("000" + code.toString(16)).slice(-4);
            } else {
                out += c;
            }
        }
        return out + "\"";
    }

    function manifest(name, sources) {
        var quoted = [], i;
        for (i = 0; i < sources.length; i++) {
            quoted.push(quote(sources[i]));
        }
        return "{\n \"name\": " + quote(name) + ",\n \"created_by\": \"FocusDrop for Adobe Bridge\",\n" +
            " \"source\": [" + quoted.join(", ") + "]\n}\n";
    }

    function stem(name) {
        var dot = name.lastIndexOf(".");
        return dot > 0 ? name.substring(0, dot) : name;
    }

    function freeName(hot, name) {
        var candidate = name, n = 1;
        while (new Folder(hot.fsName + "/" + candidate).exists ||
               new Folder(hot.fsName + "/" + candidate + ".partial").exists) {
            n += 1;
            candidate = name + "-" + n;
        }
        return candidate;
    }

    // Copy ``files`` (File objects) into a new job folder of the hot folder; returns the job folder.
    function send(files, hotPath) {
        var hot = new Folder(hotPath), name, partial, i, file, sidecar, sources = [], written;
        if (!hot.exists) {
            throw new Error("FocusDrop: the hot folder " + hot.fsName + " does not exist or cannot be reached");
        }
        if (files.length < 2) {
            throw new Error("FocusDrop: select the 2 or more frames of one focus bracket");
        }
        name = freeName(hot, File.decode(stem(files[0].name)));
        partial = new Folder(hot.fsName + "/" + name + ".partial");
        if (!partial.create()) {
            throw new Error("FocusDrop: cannot create " + partial.fsName);
        }
        for (i = 0; i < files.length; i++) {
            file = files[i];
            if (!file.copy(partial.fsName + "/" + File.decode(file.name))) {
                throw new Error("FocusDrop: cannot copy " + file.fsName + " into " + partial.fsName);
            }
            sources.push(file.fsName);
            sidecar = new File(file.parent.fsName + "/" + File.decode(stem(file.name)) + ".xmp");
            if (sidecar.exists && !sidecar.copy(partial.fsName + "/" + File.decode(sidecar.name))) {
                throw new Error("FocusDrop: cannot copy " + sidecar.fsName + " into " + partial.fsName);
            }
        }
        written = new File(partial.fsName + "/manifest.json");
        written.encoding = "UTF-8";
        if (!written.open("w") || !written.write(manifest(name, sources)) || !written.close()) {
            throw new Error("FocusDrop: cannot write " + written.fsName);
        }
        if (!partial.rename(name)) {
            throw new Error("FocusDrop: cannot rename " + partial.fsName + " to " + name);
        }
        return new Folder(hot.fsName + "/" + name);
    }

    function selectedFiles() {
        var files = [], selections = app.document.selections, i;
        for (i = 0; i < selections.length; i++) {
            if (selections[i].spec instanceof File) {
                files.push(selections[i].spec);
            }
        }
        return files;
    }

    function onSelect() {
        try {
            var settings = readSettings(HERE);
            var job = send(selectedFiles(), settings.hot_folder);
            alert("FocusDrop: sent " + File.decode(job.name) + " to " + settings.hot_folder);
        } catch (e) {
            alert(e.message);
        }
    }

    // The menu commands, once: Bridge throws on a second element with the same id (the script loaded
    // from two Startup Scripts folders, or run again by hand).
    function addMenus() {
        var i, menu;
        for (i = 0; i < MENUS.length; i++) {
            menu = MenuElement.find(MENUS[i][0]) ||
                MenuElement.create("command", "Send to FocusDrop", MENUS[i][1], MENUS[i][0]);
            menu.onSelect = onSelect;
        }
    }

    return {send: send, readSettings: readSettings, addMenus: addMenus, manifest: manifest};
}());

if (typeof BridgeTalk !== "undefined" && BridgeTalk.appName == "bridge") {
    FocusDrop.addMenus();
}
