// FocusDrop for Photoshop: opens the newest layered result (.psd or .psb) in FocusDrop's output folder, for
// an action or a keyboard shortcut (File > Scripts > Open latest FocusDrop result). The output folder comes
// from FocusDrop.settings beside this script ("out=PATH"), written by `focusdrop install photoshop`.
// Results appear there only by rename once complete, so the newest file is always whole. ES3 (ExtendScript).

var FocusDropLatest = (function () {
    var HERE = new File($.fileName).parent;  // $.fileName names this script only while it loads

    function setting(key) {
        var file = new File(HERE.fsName + "/FocusDrop.settings"), line, value = null;
        if (!file.exists) {
            throw new Error("FocusDrop: " + file.fsName + " is missing; run `focusdrop install photoshop` again");
        }
        file.encoding = "UTF-8";
        file.open("r");
        while (!file.eof) {
            line = file.readln();
            if (line.indexOf(key + "=") === 0) {
                value = line.substring(key.length + 1);
            }
        }
        file.close();
        return value;
    }

    // The newest .psd or .psb directly in ``folderPath`` (hidden temporary files skipped), or null.
    function latest(folderPath) {
        var folder = new Folder(folderPath), files, newest = null, i, name;
        if (!folder.exists) {
            throw new Error("FocusDrop: the output folder " + folder.fsName + " does not exist");
        }
        files = folder.getFiles();
        for (i = 0; i < files.length; i++) {
            name = File.decode(files[i].name);
            if (files[i] instanceof File && /\.ps[db]$/i.test(name) && name.charAt(0) !== "." &&
                    (newest === null || files[i].modified > newest.modified)) {
                newest = files[i];
            }
        }
        return newest;
    }

    function run() {
        try {
            var out = setting("out"), file = latest(out);
            if (file === null) {
                alert("FocusDrop: no result in " + out + " yet");
                return null;
            }
            return app.open(file);
        } catch (e) {
            alert(e.message);
            return null;
        }
    }

    return {latest: latest, run: run};
}());

if (typeof app !== "undefined" && typeof app.open === "function" && typeof FOCUSDROP_TEST === "undefined") {
    FocusDropLatest.run();
}
