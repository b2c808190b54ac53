-- FocusDrop's export service: renders the selected frames as 16-bit TIFF into HOT/NAME.partial/, writes
-- manifest.json (name, frame order by capture time then file name, method, format, source paths, a job id),
-- renames the folder to HOT/NAME/ (the service's signal that the stack is complete), then, if asked, waits
-- for the service's record of that job (HOT/.focusdrop/results/JOB_ID.json) and adds the result to the
-- catalogue stacked above the first frame, or shows the job's error.txt. The hot folder comes from
-- FocusDropSettings.lua, written beside this file by `focusdrop install lightroom`.
local LrApplication = import "LrApplication"
local LrDate = import "LrDate"
local LrDialogs = import "LrDialogs"
local LrErrors = import "LrErrors"
local LrFileUtils = import "LrFileUtils"
local LrPathUtils = import "LrPathUtils"
local LrTasks = import "LrTasks"
local LrView = import "LrView"

local settings = require "FocusDropSettings"

local WAIT_SECONDS = 1800 -- a 40-frame 60 MP stack, queued behind others

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

local function waitForResult(hot, jobId)
	local record = LrPathUtils.child(LrPathUtils.child(LrPathUtils.child(hot, ".focusdrop"), "results"), jobId .. ".json")
	local waited = 0
	while waited < WAIT_SECONDS do
		if LrFileUtils.exists(record) then
			return LrFileUtils.readFile(record)
		end
		LrTasks.sleep(1)
		waited = waited + 1
	end
	return nil
end

local provider = {}

provider.allowFileFormats = { "TIFF" }
provider.hideSections = { "exportLocation", "fileNaming", "video", "watermarking", "postProcessing" }
provider.exportPresetFields = {
	{ key = "focusdrop_method", default = "depthmap" },
	{ key = "focusdrop_format", default = "psd" },
	{ key = "focusdrop_addToCatalog", default = true },
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
			f:row { f:checkbox { title = "Add the result to the catalogue, above the first frame",
				value = bind "focusdrop_addToCatalog" } },
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
	LrFileUtils.createAllDirectories(partial)
	local files, sources = {}, {}
	for i, frame in ipairs(frames) do
		LrFileUtils.move(frame.path, LrPathUtils.child(partial, frame.file))
		files[i], sources[i] = frame.file, frame.source
	end
	local file = io.open(LrPathUtils.child(partial, "manifest.json"), "w")
	file:write(manifest(name, jobId, files, sources, props))
	file:close()
	LrFileUtils.move(partial, LrPathUtils.child(hot, name))
	if not props.focusdrop_addToCatalog then
		return
	end
	local record = waitForResult(hot, jobId)
	if record == nil then
		LrDialogs.message("FocusDrop: " .. name .. " is still waiting", "It is in the hot folder's queue; "
			.. "its result will be in the output folder (focusdrop status shows the queue).", "info")
	elseif jsonField(record, "state") == "done" then
		local output = string.match(record, '"outputs":%s*%[%s*"(.-[^\\])"')
		output = jsonField('{"o": "' .. output .. '"}', "o")
		local catalog = LrApplication.activeCatalog()
		catalog:withWriteAccessDo("FocusDrop: add " .. name, function()
			catalog:addPhoto(output, frames[1].photo, "above")
		end)
	else
		LrDialogs.message("FocusDrop could not stack " .. name, jsonField(record, "error") or "", "critical")
	end
end

return provider
