-- FocusDrop's export service: renders the selected frames as 16-bit TIFF into HOT/NAME.partial/, writes
-- manifest.json (name, frame order by capture time then file name, method, format, source paths, a job id),
-- renames the folder to HOT/NAME/ (the service's signal that the stack is complete), then, if asked, waits
-- for the service's record of that job (HOT/.focusdrop/results/JOB_ID.json), showing progress and
-- honouring Cancel, and copies (or moves) the result into the first frame's folder and adds it to the
-- catalogue stacked above that frame (Lightroom stacks photos of one folder only), or shows the job's
-- error.txt. Every file operation's result is checked; the catalogue is written with a timeout and tried
-- again while another write holds it. The hot folder and the output folder come from
-- FocusDropSettings.lua, written beside this file by `focusdrop install lightroom`.
local LrApplication = import "LrApplication"
local LrDate = import "LrDate"
local LrDialogs = import "LrDialogs"
local LrErrors = import "LrErrors"
local LrFileUtils = import "LrFileUtils"
local LrPathUtils = import "LrPathUtils"
local LrProgressScope = import "LrProgressScope"
local LrTasks = import "LrTasks"
local LrView = import "LrView"

local settings = require "FocusDropSettings"

local WAIT_SECONDS = 1800 -- a 40-frame 60 MP stack, queued behind others
local WRITE_TIMEOUT, WRITE_TRIES = 10, 6 -- seconds per attempt at the catalogue, attempts

local function jsonString(text)
	local escaped = string.gsub(text, '[%c"\\]', function(c)
		if c == '"' or c == "\\" then
			return "\\" .. c
		end
		return string.format("\\u%04x", string.byte(c))
	end)
	return '"' .. escaped .. '"'
end

local function jsonList(items)
	local quoted = {}
	for i, item in ipairs(items) do
		quoted[i] = jsonString(item)
	end
	return "[" .. table.concat(quoted, ", ") .. "]"
end

-- The value of "key": "..." in a flat JSON object the service wrote (strings only; escapes undone).
local function jsonField(text, key)
	local raw = string.match(text, '"' .. key .. '":%s*"(.-[^\\])"') or string.match(text, '"' .. key .. '":%s*""')
	if raw == nil then
		return nil
	end
	raw = string.gsub(raw, "\\u(%x%x%x%x)", function(h) return string.char(tonumber(h, 16) % 256) end)
	return (string.gsub(raw, "\\(.)", { n = "\n", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }))
end

local function freeName(hot, name)
	local candidate, n = name, 1
	while LrFileUtils.exists(LrPathUtils.child(hot, candidate))
		or LrFileUtils.exists(LrPathUtils.child(hot, candidate .. ".partial")) do
		n = n + 1
		candidate = name .. "-" .. n
	end
	return candidate
end

local function manifest(name, jobId, frames, sources, props)
	return "{\n" ..
		' "name": ' .. jsonString(name) .. ",\n" ..
		' "job_id": ' .. jsonString(jobId) .. ",\n" ..
		' "frames": ' .. jsonList(frames) .. ",\n" ..
		' "method": ' .. jsonString(props.focusdrop_method) .. ",\n" ..
		' "format": ' .. jsonString(props.focusdrop_format) .. ",\n" ..
		' "source": ' .. jsonList(sources) .. ",\n" ..
		' "created_by": "FocusDrop for Lightroom Classic"\n}\n'
end

local function fail(text)
	LrErrors.throwUserError("FocusDrop: " .. text)
end

-- Put a file at ``to``: moved, or where Lightroom cannot move it (another volume), copied and deleted.
local function place(from, to)
	if LrFileUtils.move(from, to) then
		return
	end
	local ok, message = LrFileUtils.copy(from, to)
	if not ok then
		fail("cannot put " .. from .. " into " .. to .. " (" .. tostring(message) .. ")")
	end
	LrFileUtils.delete(from)
end

local function writeFile(path, text)
	local file, message = io.open(path, "w")
	if not file then
		fail("cannot write " .. path .. " (" .. tostring(message) .. ")")
	end
	local written, writeMessage = file:write(text)
	file:close()
	if not written then
		fail("cannot write " .. path .. " (" .. tostring(writeMessage) .. ")")
	end
end

-- NAME.EXT in ``folder``, else NAME-2.EXT, NAME-3.EXT, ...: the first that does not exist.
local function freeFile(folder, leaf)
	local stem, extension = LrPathUtils.removeExtension(leaf), LrPathUtils.extension(leaf)
	local candidate, n = LrPathUtils.child(folder, leaf), 1
	while LrFileUtils.exists(candidate) do
		n = n + 1
		candidate = LrPathUtils.child(folder, stem .. "-" .. n .. "." .. extension)
	end
	return candidate
end

-- The service's record of the job, waited for with a progress bar; nil and "canceled" or "timeout".
local function waitForResult(functionContext, hot, jobId, name)
	local record = LrPathUtils.child(LrPathUtils.child(LrPathUtils.child(hot, ".focusdrop"), "results"), jobId .. ".json")
	local progress = LrProgressScope { title = "FocusDrop: stacking " .. name, functionContext = functionContext }
	progress:setCaption("Waiting for FocusDrop to stack " .. name .. " (Cancel: it goes on stacking)")
	local waited, why = 0, "timeout"
	while waited < WAIT_SECONDS do
		if LrFileUtils.exists(record) then
			progress:done()
			return LrFileUtils.readFile(record)
		end
		if progress:isCanceled() then
			why = "canceled"
			break
		end
		progress:setPortionComplete(waited, WAIT_SECONDS)
		LrTasks.sleep(1)
		waited = waited + 1
	end
	progress:done()
	return nil, why
end

-- Put the result beside the first frame (copied or moved) and add it stacked above it; a catalogue
-- another write holds is waited for (WRITE_TIMEOUT) and tried again (WRITE_TRIES); what fails is shown.
local function addToCatalog(output, first, name, move)
	local target = freeFile(LrPathUtils.parent(first.source), LrPathUtils.leafName(output))
	local ok, message
	if move then
		ok, message = LrFileUtils.move(output, target)
	else
		ok, message = LrFileUtils.copy(output, target)
	end
	if not ok then
		LrDialogs.message("FocusDrop stacked " .. name, "The result is " .. output .. "; it could not be put "
			.. "beside the first frame (" .. tostring(message) .. "), so it was not added to the catalogue.", "warning")
		return
	end
	local catalog = LrApplication.activeCatalog()
	local ran, added, problem = false, false, nil
	for attempt = 1, WRITE_TRIES do
		local okWrite, writeProblem = pcall(function()
			catalog:withWriteAccessDo("FocusDrop: add " .. name, function()
				ran = true
				added, problem = pcall(function() catalog:addPhoto(target, first.photo, "above") end)
			end, { timeout = WRITE_TIMEOUT })
		end)
		if ran then
			break
		end
		problem = okWrite and "another task kept Lightroom's catalogue busy" or tostring(writeProblem)
	end
	if not added then
		LrDialogs.message("FocusDrop stacked " .. name, "The result is " .. target .. "; it could not be added "
			.. "to the catalogue (" .. tostring(problem) .. "). Add it with File > Import.", "warning")
	end
end

local provider = {}

provider.allowFileFormats = { "TIFF" }
provider.hideSections = { "exportLocation", "fileNaming", "video", "watermarking", "postProcessing" }
provider.exportPresetFields = {
	{ key = "focusdrop_method", default = "depthmap" },
	{ key = "focusdrop_format", default = "psd" },
	{ key = "focusdrop_addToCatalog", default = true },
	{ key = "focusdrop_placeResult", default = "copy" },
}

function provider.updateExportSettings(exportSettings)
	exportSettings.LR_format = "TIFF"
	exportSettings.LR_export_bitDepth = 16
	exportSettings.LR_tiff_compressionMethod = "compressionMethod_ZIP"
	exportSettings.LR_size_doConstrain = false
	exportSettings.LR_outputSharpeningOn = false
	exportSettings.LR_embeddedMetadataOption = "all"
	exportSettings.LR_reimportExportedPhoto = false
end

function provider.sectionsForTopOfDialog(f, propertyTable)
	local bind = LrView.bind
	return {
		{
			title = "FocusDrop",
			f:row { f:static_text { title = "Hot folder: " .. settings.hot_folder } },
			f:row {
				f:static_text { title = "Method:" },
				f:popup_menu { value = bind "focusdrop_method", items = {
					{ title = "Depth map (clean, low noise)", value = "depthmap" },
					{ title = "Pyramid (fine crossing hairs; flat TIFF only)", value = "pyramid" } } },
				f:static_text { title = "Result:" },
				f:popup_menu { value = bind "focusdrop_format", items = {
					{ title = "Layered PSD", value = "psd" }, { title = "TIFF", value = "tif" },
					{ title = "Both", value = "both" } } },
			},
			f:row {
				f:checkbox { title = "Add the result to the catalogue, stacked above the first frame:",
					value = bind "focusdrop_addToCatalog" },
				f:popup_menu { value = bind "focusdrop_placeResult", items = {
					{ title = "a copy in the first frame's folder", value = "copy" },
					{ title = "moved there from the output folder", value = "move" } } },
			},
		},
	}
end

function provider.processRenderedPhotos(functionContext, exportContext)
	local hot = settings.hot_folder
	if not LrFileUtils.exists(hot) then
		LrErrors.throwUserError("FocusDrop: the hot folder " .. hot .. " does not exist or cannot be reached")
	end
	local props = exportContext.propertyTable
	local frames = {}
	for _, rendition in exportContext:renditions { stopIfCanceled = true } do
		local ok, path = rendition:waitForRender()
		if not ok then
			LrErrors.throwUserError("FocusDrop: " .. rendition.photo:getFormattedMetadata("fileName") ..
				" could not be rendered: " .. tostring(path))
		end
		frames[#frames + 1] = { path = path, photo = rendition.photo,
			time = rendition.photo:getRawMetadata("dateTimeOriginal") or 0,
			file = LrPathUtils.leafName(path), source = rendition.photo:getRawMetadata("path") }
	end
	if #frames < 2 then
		LrErrors.throwUserError("FocusDrop: select the 2 or more frames of one focus bracket")
	end
	table.sort(frames, function(a, b)
		if a.time ~= b.time then return a.time < b.time end
		return a.file < b.file
	end)
	local name = freeName(hot, LrPathUtils.removeExtension(frames[1].file))
	local jobId = name .. "-" .. string.format("%.0f", LrDate.currentTime() * 1000)
	local partial = LrPathUtils.child(hot, name .. ".partial")
	if not LrFileUtils.createAllDirectories(partial) and not LrFileUtils.exists(partial) then
		fail("cannot create " .. partial)
	end
	local files, sources = {}, {}
	for i, frame in ipairs(frames) do
		place(frame.path, LrPathUtils.child(partial, frame.file))
		files[i], sources[i] = frame.file, frame.source
	end
	writeFile(LrPathUtils.child(partial, "manifest.json"), manifest(name, jobId, files, sources, props))
	local renamed, message = os.rename(partial, LrPathUtils.child(hot, name)) -- a folder: LrFileUtils.move takes files
	if not renamed then
		fail("cannot rename " .. partial .. " to " .. name .. " (" .. tostring(message) .. ")")
	end
	if not props.focusdrop_addToCatalog then
		return
	end
	local record, why = waitForResult(functionContext, hot, jobId, name)
	if record == nil then
		LrDialogs.message("FocusDrop: " .. name .. (why == "canceled" and " goes on stacking" or " is still waiting"),
			"It is in the hot folder's queue; its result will be in " .. (settings.out or "the output folder")
			.. " and is not added to the catalogue (focusdrop status shows the queue).", "info")
	elseif jsonField(record, "state") == "done" then
		local output = string.match(record, '"outputs":%s*%[%s*"(.-[^\\])"')
		addToCatalog(jsonField('{"o": "' .. output .. '"}', "o"), frames[1], name, props.focusdrop_placeResult == "move")
	else
		LrDialogs.message("FocusDrop could not stack " .. name, jsonField(record, "error") or "", "critical")
	end
end

return provider
